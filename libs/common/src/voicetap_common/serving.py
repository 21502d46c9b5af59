"""Running a service until it is told to stop: one ``stop`` event for the signals, the HTTP server
and the workers alike, so every part of a process stops the same way."""

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol


class Server(Protocol):
    """What is used of ``uvicorn.Server`` (libs/common does not depend on uvicorn)."""

    should_exit: bool

    async def serve(self) -> None: ...


async def serve_until(server: Server, stop: asyncio.Event) -> None:
    """Serve until the server returns by itself (uvicorn catches SIGTERM/SIGINT while serving) or
    ``stop`` is set."""

    async def exit_on_stop() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(exit_on_stop())
    try:
        await server.serve()
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
