"""The fan-out: what the console's one topic reader sees, sent to every open browser stream.

Each browser tab holds a :class:`Subscriber` (a queue in this process), never a Redis connection.
Call changes are coalesced and sent every flush interval as one ``calls`` event shared by every
list page, so 200 calls talking at once cost a tab a few events a second, not hundreds. A tab that
falls too far behind is cut off; its ``EventSource`` reconnects and starts from a fresh snapshot.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from voicetap_console.board import Board, Call, parse_time
from voicetap_console.timing import line_span
from voicetap_sdk.codec import dumps
from voicetap_sdk.topics import CALL_TRANSCRIPTION

QUEUE_LIMIT = 500
RECONNECT_MS = 1000
CATCH_UP_WAIT_S = 5.0


def sse_event(event: str, data: Any) -> bytes:
    # orjson never emits a raw newline, so one data line holds the whole JSON.
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    """One open stream: the whole board (``call_control_id`` None) or one call."""

    call_control_id: str | None
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    cut_off: bool = False


class Hub:
    def __init__(self, board: Board) -> None:
        self.board = board
        self._subscribers: set[Subscriber] = set()
        self._dirty: dict[str, Call] = {}
        self.caught_up = asyncio.Event()  # set once the reader has read back the history

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def apply(self, topic: str, event: dict[str, Any]) -> None:
        """One topic entry's event: into the board, and a transcript line straight to its call."""
        if topic == CALL_TRANSCRIPTION:
            self._transcription(event.get("data") or {})
            return
        call = self.board.apply(topic, event)
        if call is not None:
            self._dirty[call.call_control_id] = call

    def flush(self) -> None:
        """Send the calls changed since the last flush."""
        if not self._dirty:
            return
        calls = {ccid: call.as_json() for ccid, call in self._dirty.items()}
        self._dirty.clear()
        together = sse_event("calls", list(calls.values()))
        for sub in list(self._subscribers):
            if sub.call_control_id is None:
                self._send(sub, together)
            elif sub.call_control_id in calls:
                self._send(sub, sse_event("call", calls[sub.call_control_id]))

    def subscribe(self, call_control_id: str | None) -> Subscriber:
        sub = Subscriber(call_control_id)
        self._subscribers.add(sub)
        return sub

    def close(self) -> None:
        """End every stream (the process is stopping)."""
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)
        self._subscribers.clear()

    async def stream(
        self, sub: Subscriber, first: Callable[[], bytes], keepalive_s: float
    ) -> AsyncIterator[bytes]:
        """What the subscriber's browser reads: ``first()`` (its snapshot, made once the history is
        read back, or after ``CATCH_UP_WAIT_S`` at most), then each event."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caught_up.wait(), CATCH_UP_WAIT_S)
        try:
            yield f"retry: {RECONNECT_MS}\n\n".encode() + first()
            while True:
                try:
                    chunk = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if chunk is None:
                    return
                yield chunk
        finally:
            self._subscribers.discard(sub)

    def _send(self, sub: Subscriber, chunk: bytes) -> None:
        if sub.cut_off:
            return
        if sub.queue.qsize() >= QUEUE_LIMIT:
            sub.cut_off = True
            self._subscribers.discard(sub)
            sub.queue.put_nowait(None)
            return
        sub.queue.put_nowait(chunk)

    def _transcription(self, data: dict[str, Any]) -> None:
        payload = data.get("payload") or {}
        ccid = payload.get("call_control_id")
        found = payload.get("transcription_data") or {}
        if not isinstance(ccid, str) or not isinstance(found.get("transcript"), str):
            return
        watchers = [s for s in self._subscribers if s.call_control_id == ccid]
        final = found.get("is_final", True) is not False
        call = self.board.get(ccid)
        track = found.get("transcription_track")
        occurred_at = parse_time(data.get("occurred_at"))
        start = end = 0.0
        if call is not None:
            ended = call.line_ends.get(track, 0.0)
            start, end = line_span(occurred_at, found["transcript"], call.timeline_origin(), ended)
            if final:
                call.line_ends[track] = end
        if not watchers:
            return
        line = sse_event(
            "segment" if final else "partial",
            {
                "id": data.get("id"),
                "call_control_id": ccid,
                "occurred_at": data.get("occurred_at"),
                "track": track,
                "text": found["transcript"],
                "confidence": found.get("confidence"),
                "start": start,
                "end": end,
            },
        )
        for sub in watchers:
            self._send(sub, line)
