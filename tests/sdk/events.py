"""Entries as the stack writes them, for the SDK's tests."""

from typing import Any

from voicetap_sdk import codec


def transcription(
    event_id: str, transcript: str, *, call: str = "v3:call-1", is_final: bool = True
) -> bytes:
    """A ``call.transcription`` webhook body, as the gateway publishes it."""
    return webhook(
        event_id,
        "call.transcription",
        {
            "call_control_id": call,
            "transcription_data": {
                "transcript": transcript,
                "confidence": 0.9,
                "is_final": is_final,
                "transcription_track": "inbound",
            },
        },
    )


def webhook(event_id: str, event_type: str, payload: dict[str, Any]) -> bytes:
    return codec.dumps(
        {
            "data": {
                "record_type": "event",
                "event_type": event_type,
                "id": event_id,
                "occurred_at": "2026-06-01T12:00:00Z",
                "payload": payload,
            },
            "meta": {"attempt": 1, "delivered_to": "http://gateway/webhooks/telnyx"},
        }
    )
