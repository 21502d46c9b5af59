"""Typed models of Telnyx webhook events.

Telnyx adds fields over time, so every model keeps unknown fields (``extra="allow"``), and any
event type the code does not know parses as :class:`GenericEvent` instead of failing: nothing a
valid signature covers is ever dropped. The union discriminates on ``event_type``, so a
``call.initiated`` never parses as another type that happens to fit.
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CallPayload(_Open):
    """The ids every call event carries."""

    call_control_id: str | None = None
    call_leg_id: str | None = None
    call_session_id: str | None = None
    connection_id: str | None = None
    client_state: str | None = None


class CallInitiatedPayload(CallPayload):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: Literal["incoming", "outgoing"] | str | None = None
    state: str | None = None
    start_time: datetime | None = None
    caller_id_name: str | None = None
    offered_codecs: str | None = None
    connection_codecs: str | None = None
    custom_headers: list[dict[str, Any]] | None = None
    sip_headers: list[dict[str, Any]] | None = None
    tags: list[str] | None = None
    shaken_stir_attestation: str | None = None
    shaken_stir_validated: bool | None = None


class CallAnsweredPayload(CallPayload):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    state: str | None = None
    start_time: datetime | None = None
    custom_headers: list[dict[str, Any]] | None = None
    sip_headers: list[dict[str, Any]] | None = None
    tags: list[str] | None = None


class InboundQualityStats(_Open):
    mos: str | None = None
    jitter_max_variance: str | None = None
    jitter_packet_count: str | None = None
    packet_count: str | None = None
    skip_packet_count: str | None = None


class OutboundQualityStats(_Open):
    packet_count: str | None = None
    skip_packet_count: str | None = None


class CallQualityStats(_Open):
    inbound: InboundQualityStats | None = None
    outbound: OutboundQualityStats | None = None


class CallHangupPayload(CallPayload):
    """No ``end_time`` and no ``direction`` here: the end time is the event's ``occurred_at``."""

    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    state: str | None = None
    start_time: datetime | None = None
    hangup_cause: str | None = None
    hangup_source: str | None = None
    sip_hangup_cause: str | None = None
    call_quality_stats: CallQualityStats | None = None
    tags: list[str] | None = None


class ForkPayload(CallPayload):
    stream_type: str | None = None


class StreamingPayload(CallPayload):
    stream_url: str | None = None
    stream_id: str | None = None


class StreamingFailedPayload(CallPayload):
    failure_reason: str | None = None
    stream_id: str | None = None
    stream_type: str | None = None
    stream_params: dict[str, Any] | None = None


class TranscriptionData(_Open):
    transcript: str
    confidence: float | None = None
    # Engines without interim results send finals only; a missing flag means final.
    is_final: bool = True
    # Present only with engine B (Telnyx's own).
    transcription_track: Literal["inbound", "outbound"] | None = None


class CallTranscriptionPayload(CallPayload):
    transcription_data: TranscriptionData


class _EventBase(_Open):
    record_type: str = "event"
    id: str
    occurred_at: datetime | None = None


class CallInitiatedEvent(_EventBase):
    event_type: Literal["call.initiated"]
    payload: CallInitiatedPayload


class CallAnsweredEvent(_EventBase):
    event_type: Literal["call.answered"]
    payload: CallAnsweredPayload


class CallHangupEvent(_EventBase):
    event_type: Literal["call.hangup"]
    payload: CallHangupPayload


class CallForkStartedEvent(_EventBase):
    event_type: Literal["call.fork.started"]
    payload: ForkPayload


class CallForkStoppedEvent(_EventBase):
    event_type: Literal["call.fork.stopped"]
    payload: ForkPayload


class StreamingStartedEvent(_EventBase):
    event_type: Literal["streaming.started"]
    payload: StreamingPayload


class StreamingStoppedEvent(_EventBase):
    event_type: Literal["streaming.stopped"]
    payload: StreamingPayload


class StreamingFailedEvent(_EventBase):
    event_type: Literal["streaming.failed"]
    payload: StreamingFailedPayload


class CallTranscriptionEvent(_EventBase):
    event_type: Literal["call.transcription"]
    payload: CallTranscriptionPayload


class GenericEvent(_EventBase):
    """Any event type voicetap has no model for yet; kept whole."""

    event_type: str
    payload: dict[str, Any] = Field(default_factory=dict)


KNOWN_EVENTS: dict[str, type[_EventBase]] = {
    "call.initiated": CallInitiatedEvent,
    "call.answered": CallAnsweredEvent,
    "call.hangup": CallHangupEvent,
    "call.fork.started": CallForkStartedEvent,
    "call.fork.stopped": CallForkStoppedEvent,
    "streaming.started": StreamingStartedEvent,
    "streaming.stopped": StreamingStoppedEvent,
    "streaming.failed": StreamingFailedEvent,
    "call.transcription": CallTranscriptionEvent,
}

_GENERIC_TAG = "*"


def _event_tag(value: Any) -> str:
    event_type = (
        value.get("event_type") if isinstance(value, dict) else getattr(value, "event_type", None)
    )
    return event_type if event_type in KNOWN_EVENTS else _GENERIC_TAG


TelnyxEvent = Annotated[
    Annotated[CallInitiatedEvent, Tag("call.initiated")]
    | Annotated[CallAnsweredEvent, Tag("call.answered")]
    | Annotated[CallHangupEvent, Tag("call.hangup")]
    | Annotated[CallForkStartedEvent, Tag("call.fork.started")]
    | Annotated[CallForkStoppedEvent, Tag("call.fork.stopped")]
    | Annotated[StreamingStartedEvent, Tag("streaming.started")]
    | Annotated[StreamingStoppedEvent, Tag("streaming.stopped")]
    | Annotated[StreamingFailedEvent, Tag("streaming.failed")]
    | Annotated[CallTranscriptionEvent, Tag("call.transcription")]
    | Annotated[GenericEvent, Tag(_GENERIC_TAG)],
    Discriminator(_event_tag),
]


class WebhookMeta(_Open):
    attempt: int | None = None
    delivered_to: str | None = None


EventT = TypeVar("EventT", bound=_EventBase)


class TelnyxWebhook(_Open, Generic[EventT]):
    """The body of one event type (``TelnyxWebhook[CallHangupEvent]``): the schema of its topic."""

    data: EventT
    meta: WebhookMeta | None = None


class WebhookEnvelope(_Open):
    """The whole body Telnyx POSTs. The SDK's models drop ``meta``; voicetap keeps it."""

    data: TelnyxEvent
    meta: WebhookMeta | None = None


envelope_adapter: TypeAdapter[WebhookEnvelope] = TypeAdapter(WebhookEnvelope)


def parse_envelope(body: bytes | str) -> WebhookEnvelope:
    """Parse and validate a webhook body; raises ``pydantic.ValidationError``."""
    return envelope_adapter.validate_json(body)
