"""Webhook bodies as Telnyx sends them, and entries as the gateway writes them."""

import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from voicetap_sdk import codec
from voicetap_sdk.streams import Entry, entry_fields
from voicetap_sdk.topics import telnyx_topic

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def body(
    event_type: str,
    call_id: str,
    payload: dict[str, object],
    *,
    seconds: float = 0.0,
    event_id: str | None = None,
) -> dict[str, object]:
    return {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id or str(uuid.uuid4()),
            "occurred_at": at(seconds).isoformat().replace("+00:00", "Z"),
            "payload": {
                "call_control_id": call_id,
                "call_leg_id": f"leg-{call_id}",
                "call_session_id": f"session-{call_id}",
                "connection_id": "conn-1",
                "client_state": None,
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks"},
    }


def transcription(
    call_id: str,
    text: str,
    seconds: float,
    *,
    final: bool = True,
    track: str | None = "inbound",
    event_id: str | None = None,
    confidence: float | None = 0.9,
) -> dict[str, object]:
    data: dict[str, object] = {"transcript": text, "confidence": confidence, "is_final": final}
    if track is not None:
        data["transcription_track"] = track
    return body(
        "call.transcription",
        call_id,
        {"transcription_data": data},
        seconds=seconds,
        event_id=event_id,
    )


def initiated(
    call_id: str,
    seconds: float = 0.0,
    *,
    caller: str = "+15551230001",
    callee: str = "+15559870002",
    event_id: str | None = None,
) -> dict[str, object]:
    return body(
        "call.initiated",
        call_id,
        {
            "from": caller,
            "to": callee,
            "direction": "incoming",
            "state": "parked",
            "start_time": at(seconds).isoformat(),
        },
        seconds=seconds,
        event_id=event_id,
    )


def answered(
    call_id: str,
    seconds: float = 1.0,
    *,
    caller: str = "+15551230001",
    callee: str = "+15559870002",
    event_id: str | None = None,
) -> dict[str, object]:
    return body(
        "call.answered",
        call_id,
        {"from": caller, "to": callee, "state": "answered"},
        seconds=seconds,
        event_id=event_id,
    )


def hangup(
    call_id: str, seconds: float = 60.0, *, event_id: str | None = None
) -> dict[str, object]:
    return body(
        "call.hangup",
        call_id,
        {
            "from": "+15551230001",
            "to": "+15559870002",
            "state": "hangup",
            "hangup_cause": "normal_clearing",
            "hangup_source": "caller",
            "sip_hangup_cause": "200",
        },
        seconds=seconds,
        event_id=event_id,
    )


def entry(event: dict[str, object], entry_id: str = "1-0") -> Entry:
    data = event["data"]
    assert isinstance(data, dict)
    fields = entry_fields(
        data["id"],
        data["event_type"],
        codec.dumps(event),
        call_control_id=data["payload"]["call_control_id"],
    )
    return Entry(
        telnyx_topic(data["event_type"]),
        entry_id,
        {k: v if isinstance(v, bytes) else v.encode() for k, v in fields.items()},
    )


async def publish(redis: Redis, *events: dict[str, object]) -> None:
    """Write ``events`` as the gateway does, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            data = event["data"]
            assert isinstance(data, dict)
            pipe.xadd(
                telnyx_topic(data["event_type"]),
                entry_fields(
                    data["id"],
                    data["event_type"],
                    codec.dumps(event),
                    call_control_id=data["payload"]["call_control_id"],
                    received_at=datetime.now(UTC).isoformat(),
                ),
            )
        await pipe.execute()
