"""The webhook models: every event type TELNYX.md names parses to its own model from the payload
the simulator sends (the shapes TELNYX.md documents), any other type to GenericEvent kept whole,
and fields Telnyx adds later survive."""

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from telnyx_simulator import payloads
from telnyx_simulator.state import FakeTelnyxState
from voicetap_sdk.events import (
    KNOWN_EVENTS,
    CallHangupEvent,
    CallTranscriptionEvent,
    GenericEvent,
    StreamingFailedEvent,
    TelnyxWebhook,
    parse_envelope,
)

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _body(event_type: str, payload: dict[str, object]) -> bytes:
    return orjson.dumps(
        payloads.envelope(
            payloads.event(event_type, payload, START),
            attempt=2,
            delivered_to="https://example.test/webhooks/telnyx",
        )
    )


def _examples() -> dict[str, dict[str, object]]:
    call = FakeTelnyxState(api_key="KEY_unused").create_call()
    return {
        "call.initiated": payloads.call_initiated(call, START),
        "call.answered": payloads.call_answered(call, START),
        "call.hangup": payloads.call_hangup(
            call,
            START,
            hangup_cause="normal_clearing",
            hangup_source="caller",
            sip_hangup_cause="200",
            packets={"inbound": 50, "outbound": 49},
        ),
        "call.fork.started": payloads.fork(call),
        "call.fork.stopped": payloads.fork(call),
        "streaming.started": payloads.streaming(call, "wss://example.test/streams/telnyx"),
        "streaming.stopped": payloads.streaming(call, "wss://example.test/streams/telnyx"),
        "streaming.failed": payloads.streaming_failed(
            call,
            failure_reason="connection_failed",
            stream_id="s-1",
            stream_url="wss://example.test/x",
        ),
        "call.transcription": payloads.transcription(
            call, "hello there", is_final=True, confidence=0.93, track="inbound"
        ),
    }


@pytest.mark.parametrize("event_type", list(KNOWN_EVENTS))
def test_every_known_type_parses_to_its_own_model(event_type: str) -> None:
    example = _examples()[event_type]
    envelope = parse_envelope(_body(event_type, example))
    assert type(envelope.data) is KNOWN_EVENTS[event_type]
    assert envelope.data.payload.call_control_id == example["call_control_id"]
    assert envelope.meta is not None and envelope.meta.attempt == 2  # the SDK's models drop meta


def test_the_models_read_what_consumers_need() -> None:
    examples = _examples()
    hangup = parse_envelope(_body("call.hangup", examples["call.hangup"])).data
    assert isinstance(hangup, CallHangupEvent) and hangup.payload.hangup_cause == "normal_clearing"
    text = parse_envelope(_body("call.transcription", examples["call.transcription"])).data
    assert isinstance(text, CallTranscriptionEvent)
    assert (
        text.payload.transcription_data.transcript == "hello there"
        and text.payload.transcription_data.is_final is True
    )
    failed = parse_envelope(_body("streaming.failed", examples["streaming.failed"])).data
    assert (
        isinstance(failed, StreamingFailedEvent)
        and failed.payload.failure_reason == "connection_failed"
    )


def test_an_unknown_type_is_a_generic_event_kept_whole() -> None:
    payload = {
        "call_control_id": "v3:x",
        "recording_urls": {"mp3": "https://example.test/r.mp3"},
        "nested": {"a": [1, 2]},
    }
    envelope = parse_envelope(_body("call.recording.saved", payload))
    assert isinstance(envelope.data, GenericEvent)
    assert envelope.data.event_type == "call.recording.saved" and envelope.data.payload == payload


def test_fields_telnyx_adds_later_survive_a_round_trip() -> None:
    example = {**_examples()["call.answered"], "brand_new_field": {"x": 1}}
    raw = orjson.loads(_body("call.answered", example))
    raw["data"]["new_top_level"] = "kept"
    envelope = parse_envelope(orjson.dumps(raw))
    dumped = envelope.model_dump(mode="json", by_alias=True)
    assert (
        dumped["data"]["payload"]["brand_new_field"] == {"x": 1}
        and dumped["data"]["new_top_level"] == "kept"
    )


def test_a_topic_schema_is_the_typed_webhook() -> None:
    body = _body("call.hangup", _examples()["call.hangup"])
    webhook = TelnyxWebhook[CallHangupEvent].model_validate_json(body)
    assert webhook.data.payload.hangup_source == "caller"
    with pytest.raises(ValidationError):
        TelnyxWebhook[CallHangupEvent].model_validate_json(
            _body("call.answered", _examples()["call.answered"])
        )


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"data": {}}',
        b'{"data": {"event_type": "call.hangup", "payload": "nope"}}',
        b"not json",
    ],
)
def test_a_broken_envelope_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_envelope(body)
