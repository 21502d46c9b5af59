"""One lock per call: its lifecycle events, its commands and its stream attachment never interleave."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class CallLocks:
    def __init__(self, held: Callable[[str], bool]) -> None:
        """``held(call_control_id)``: the call is still here (its lock is kept while it is)."""
        self._held = held
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, call_control_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(call_control_id)
        if lock is None:
            lock = self._locks[call_control_id] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if (
                not self._held(call_control_id)
                and not lock.locked()
                and self._locks.get(call_control_id) is lock
            ):
                del self._locks[call_control_id]
