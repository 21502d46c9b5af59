"""Webhook bodies shaped like Telnyx's (TELNYX.md): the envelope and each event's payload.

Pure code. An event is built once (its ``data``); each delivery attempt wraps it in an envelope
with its own ``meta.attempt``, so a re-delivery keeps ``data.id``.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from telnyx_simulator.state import SimCall

Payload = dict[str, Any]


def telnyx_time(moment: datetime) -> str:
    """``2026-11-23T12:00:00.000000Z``, as Telnyx writes ``occurred_at`` and ``start_time``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(event_type: str, payload: Payload, occurred_at: datetime | None = None) -> dict[str, Any]:
    """The ``data`` object of a webhook, with a fresh unique ``id``."""
    return {
        "record_type": "event",
        "event_type": event_type,
        "id": str(uuid.uuid4()),
        "occurred_at": telnyx_time(occurred_at or datetime.now(UTC)),
        "payload": payload,
    }


def envelope(data: dict[str, Any], attempt: int, delivered_to: str) -> dict[str, Any]:
    return {"data": data, "meta": {"attempt": attempt, "delivered_to": delivered_to}}


def _headers_and_tags() -> Payload:
    return {"custom_headers": [], "sip_headers": [], "tags": []}


def call_initiated(call: SimCall, start_time: datetime) -> Payload:
    return {
        **call.ids(),
        "from": call.from_,
        "to": call.to,
        "direction": call.direction,
        "state": "parked" if call.direction == "incoming" else "bridging",
        "start_time": telnyx_time(start_time),
        "caller_id_name": call.from_,
        "offered_codecs": "PCMU,PCMA,G722,OPUS",
        "connection_codecs": "PCMU,PCMA",
        "shaken_stir_attestation": "A",
        "shaken_stir_validated": True,
        **_headers_and_tags(),
    }


def call_answered(call: SimCall, start_time: datetime) -> Payload:
    return {
        **call.ids(),
        "from": call.from_,
        "to": call.to,
        "start_time": telnyx_time(start_time),
        "state": "answered",
        **_headers_and_tags(),
    }


def call_hangup(
    call: SimCall,
    start_time: datetime,
    *,
    hangup_cause: str,
    hangup_source: str,
    sip_hangup_cause: str,
    packets: dict[str, int],
) -> Payload:
    """No ``end_time`` and no ``direction``: the end is the event's ``occurred_at``. Stats are strings."""
    return {
        **call.ids(),
        "from": call.from_,
        "to": call.to,
        "start_time": telnyx_time(start_time),
        "state": "hangup",
        "hangup_cause": hangup_cause,
        "hangup_source": hangup_source,
        "sip_hangup_cause": sip_hangup_cause,
        "call_quality_stats": {
            "inbound": {
                "mos": "4.50",
                "jitter_max_variance": "0.00",
                "jitter_packet_count": "0",
                "packet_count": str(packets.get("inbound", 0)),
                "skip_packet_count": "0",
            },
            "outbound": {"packet_count": str(packets.get("outbound", 0)), "skip_packet_count": "0"},
        },
        "tags": [],
    }


def fork(call: SimCall, stream_type: str = "decrypted") -> Payload:
    """``call.fork.started`` and ``call.fork.stopped``."""
    return {**call.ids(), "stream_type": stream_type}


def streaming(call: SimCall, stream_url: str) -> Payload:
    """``streaming.started`` and ``streaming.stopped``."""
    return {**call.ids(), "stream_url": stream_url}


def streaming_failed(
    call: SimCall, *, failure_reason: str, stream_id: str, stream_url: str
) -> Payload:
    return {
        **call.ids(),
        "failure_reason": failure_reason,
        "stream_id": stream_id,
        "stream_type": "websocket",
        "stream_params": {"stream_url": stream_url},
    }


def transcription(
    call: SimCall, transcript: str, *, is_final: bool, confidence: float | None, track: str | None
) -> Payload:
    """``transcription_track`` is sent only by engine B (Telnyx's own): pass None for the others."""
    data: Payload = {"transcript": transcript, "confidence": confidence, "is_final": is_final}
    if track is not None:
        data["transcription_track"] = track
    return {**call.ids(), "transcription_data": data}
