"""Topic entries as the gateway and media_ingest write them, and an SSE reader for the tests."""

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from voicetap_sdk import codec
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import MEDIA_ANALYTICS, telnyx_topic


async def webhook(producer: Producer, event_type: str, ccid: str, **payload: Any) -> None:
    event_id = f"{event_type}:{ccid}:{time.monotonic_ns()}"
    body = {
        "data": {
            "id": event_id,
            "record_type": "event",
            "event_type": event_type,
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"call_control_id": ccid, **payload},
        },
        "meta": {"attempt": 1},
    }
    await producer.publish(
        telnyx_topic(event_type), event_id, event_type, codec.dumps(body), call_control_id=ccid
    )


async def analytics(producer: Producer, ccid: str, second: int, db: float) -> None:
    leg = {"rms_dbfs": db, "peak_dbfs": db + 6, "talk": 1.0, "silence": 0.0,
           "voice_active": True, "talk_total": float(second)}  # fmt: skip
    event = {
        "id": f"analytics:{ccid}:{second}", "call_control_id": ccid, "start": second - 1.0,
        "end": float(second), "overtalk": 0.0, "overtalk_total": 0.0, "inbound": leg,
        "outbound": {**leg, "voice_active": False}, "at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    await producer.publish(
        MEDIA_ANALYTICS, event["id"], MEDIA_ANALYTICS, codec.dumps(event), call_control_id=ccid
    )


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, parsed data) of each event of a text/event-stream response."""
    kind, data = "message", b""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:].encode()
        elif line == "" and data:
            yield kind, codec.loads(data)
            kind, data = "message", b""
