"""Running a service until it is told to stop: one ``stop`` event for the signals, the HTTP server
and the workers alike, so every part of a process stops the same way."""

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol


class Server(Protocol):
    """What is used of ``uvicorn.Server`` (libs/common does not depend on uvicorn)."""

    should_exit: bool

    async def serve(self, sockets: list[socket.socket] | None = None) -> None: ...


async def serve_until(
    server: Server,
    stop: asyncio.Event,
    failure: "WorkFailure | None" = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve until the server returns by itself (uvicorn catches SIGTERM/SIGINT while serving),
    ``stop`` is set, or background work records a ``failure``; on ``sockets`` made by the caller
    (else on the address of the server's config)."""

    async def exit_on_stop() -> None:
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
        if failure is not None:
            waits.append(asyncio.ensure_future(failure.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        server.should_exit = True

    watcher = asyncio.create_task(exit_on_stop())
    try:
        await server.serve(sockets)
    finally:
        watcher.cancel()


async def until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``run(stop)`` with ``stop`` set on SIGTERM or SIGINT (uvicorn installs its own handlers
    while serving and re-raises the signal after: either way ``stop`` is set)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(stop)


class WorkFailure:
    """Where a service's background work reports that it failed for good.

    uvicorn only logs an exception raised after the lifespan started and goes on serving, so a
    process whose consumers died would answer probes forever. ``guarded`` work records its failure
    here instead; ``serve_until`` then stops the server as a signal would, and ``main`` exits
    non-zero with ``message``.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._event = asyncio.Event()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    def message(self, program: str) -> str:
        error = self.error
        text = (
            str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
        )
        name = type(error).__name__
        return (
            f"{program}: stopped after a failure: {name}: {text}" if text else f"{program}: {name}"
        )


async def guarded(work: Awaitable[None], failure: WorkFailure) -> None:
    """Run ``work``; an exception it raises is recorded in ``failure`` (and stops the process)."""
    try:
        await work
    except Exception as exc:
        failure.fail(exc)
