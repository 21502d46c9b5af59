"""The live transcript as Server-Sent Events: what is stored so far, then each new entry.

No gap and no repeat: the position in the call's live stream is read *before* the snapshot, and
a segment is published there only after its commit, so anything the snapshot missed comes after
that position; a segment seen in both is sent once. Every event carries the stream position as its
``id``, so a client that reconnects with ``Last-Event-ID`` resumes where it stopped; of the
snapshot only the last event carries one, so a client cut off half-way through the snapshot has no
id yet and gets the whole snapshot again. The stream ends with a ``completed`` event once the
transcript is completed.
"""

import re
from collections.abc import AsyncIterator
from typing import cast

from transcript_indexer.live import live_topic
from transcript_indexer.storage.base import Transcript
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import RawEntries

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def sse_event(event: str, data: bytes, event_id: str | None) -> bytes:
    # orjson never emits a raw newline, so one data line holds the whole JSON.
    head = b"id: " + event_id.encode() + b"\n" if event_id is not None else b""
    return head + b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def resume_position(last_event_id: str | None) -> str | None:
    """The stream id a reconnecting client last saw, when it is one."""
    return last_event_id if last_event_id and _STREAM_ID.match(last_event_id) else None


async def stream_position(redis: RedisClient, call_control_id: str) -> str:
    newest = cast(RawEntries, await redis.xrevrange(live_topic(call_control_id), count=1))
    return newest[0][0].decode() if newest else "0-0"


async def live_events(
    redis: RedisClient,
    call_control_id: str,
    position: str,
    snapshot: Transcript | None,
    keepalive_ms: int,
) -> AsyncIterator[bytes]:
    sent: set[str] = set()
    if snapshot is not None:
        rows = [("segment", row) for row in snapshot.segments] + [
            ("partial", row) for row in snapshot.partials
        ]
        completed = snapshot.call.completed_at is not None
        for n, (kind, row) in enumerate(rows, 1):
            sent.add(row.event_id)
            yield sse_event(
                kind,
                codec.dumps(row.as_json()),
                position if n == len(rows) and not completed else None,
            )
        if completed:
            yield sse_event(
                "completed", codec.dumps({"call_control_id": call_control_id}), position
            )
            return
    topic = live_topic(call_control_id)
    while True:
        reply = cast(
            "list[tuple[bytes, RawEntries]]",
            await redis.xread({topic: position}, count=200, block=keepalive_ms),
        )
        if not reply:
            yield b": keepalive\n\n"
            continue
        for entry_id, fields in reply[0][1]:
            position = entry_id.decode()
            kind = fields.get(b"type", b"").decode()
            event_id = fields.get(b"id", b"").decode()
            if kind == "segment" and event_id in sent:
                continue
            yield sse_event(kind, fields.get(b"event", b"{}"), position)
            if kind == "completed":
                return
