"""One way to wait out a failing dependency: exponential pauses that never delay a shutdown, and an
outage logged twice (when it starts, and when it ends with its length) instead of once per retry."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` is set meanwhile: a loop's pause that never delays
    its process's shutdown."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Backoff:
    """Pauses of ``first`` seconds, doubled after each failure up to ``cap``; reset by ``succeeded``.

    ``what`` names the dependency in the two log lines (``"redis"``, ``"postgres"``). A loop calls
    ``await backoff.failed(exc, stop)`` after a failed attempt and ``backoff.succeeded()`` after a
    good one; ``failed`` returns early when ``stop`` is set.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        first: float = 0.1,
        cap: float = 5.0,
        context: Mapping[str, object] | None = None,
    ) -> None:
        self._what = what
        self._log = logger
        self._first = first
        self._cap = cap
        self._context = dict(context or {})
        self._pause = first
        self._outage_since: float | None = None
        self.failures = 0

    @property
    def in_outage(self) -> bool:
        return self._outage_since is not None

    @property
    def pause(self) -> float:
        """The pause the next ``failed`` will take."""
        return self._pause

    async def failed(self, error: BaseException, stop: asyncio.Event | None = None) -> None:
        self.record_failure(error)
        pause = self._pause
        self._pause = min(self._pause * 2, self._cap)
        if stop is None:
            await asyncio.sleep(pause)
        else:
            await sleep_or_stop(stop, pause)

    def record_failure(self, error: BaseException) -> None:
        """Count a failure (logging the outage's start once) without pausing."""
        self.failures += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._log.warning(
                "%s unavailable, retrying until it is back: %s",
                self._what,
                _one_line(error),
                extra={**self._context, "dependency": self._what, "error": _one_line(error)},
            )

    def succeeded(self) -> None:
        if self._outage_since is not None:
            seconds = time.monotonic() - self._outage_since
            self._log.warning(
                "%s back after %.1f s (%d failed attempts)",
                self._what,
                seconds,
                self.failures,
                extra={
                    **self._context,
                    "dependency": self._what,
                    "outage_s": round(seconds, 3),
                    "attempts": self.failures,
                },
            )
        self._outage_since = None
        self._pause = self._first
        self.failures = 0


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
