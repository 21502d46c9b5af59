"""Call Control commands as events: any consumer publishes one, the owning service executes it.

Media commands (fork, streaming) go to ``voicetap.command.media`` and are executed by the
``media_ingest`` group; transcription commands go to ``voicetap.command.transcription`` and are
executed by the ``transcript_indexer`` group. Every outcome is published on
``voicetap.command.result``. Each command carries its own ``id``; the Telnyx ``command_id`` is
derived from it, so a redelivered command, or one taken by two instances, is executed once, and
Telnyx de-duplicates a resent request too.

Enumerated parameters use the same values as the official SDK's own types (a test compares them),
so a command is refused before anything is sent.
"""

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    TypeAdapter,
    field_validator,
    model_validator,
)

from voicetap_sdk import topics

StreamTrack = Literal["inbound_track", "outbound_track", "both_tracks"]
StreamCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"]
BidirectionalMode = Literal["mp3", "rtp"]
BidirectionalCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"]
BidirectionalSamplingRate = Literal[8000, 16000, 22050, 24000, 48000]
BidirectionalTargetLegs = Literal["both", "self", "opposite"]
TranscriptionEngine = Literal[
    "Google",
    "Telnyx",
    "Deepgram",
    "Azure",
    "xAI",
    "AssemblyAI",
    "Speechmatics",
    "Soniox",
    "Parakeet",
    "Humain",
    "Reson8",
    "Cohere",
    "A",
    "B",
]
TranscriptionTracks = Literal["inbound", "outbound", "both"]

_UDP_TARGET = re.compile(r"^udp:(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


class CallCommand(BaseModel):
    """What every command has; each subclass fixes ``action`` to its own literal value."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not silently ignored

    action: str

    id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        description="The command's own id: its idempotency key.",
    )
    call_control_id: str = Field(min_length=1)
    correlation_id: str | None = Field(
        default=None, description="Returned as is on the result, for the sender."
    )
    client_state: str | None = Field(
        default=None, description="Base64 state Telnyx adds to the webhooks this command causes."
    )

    def telnyx_command_id(self) -> str:
        """The ``command_id`` sent to Telnyx, which de-duplicates it for 60 s per call."""
        return f"voicetap:{self.action}:{self.id}"

    def sdk_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the SDK method, without the unset ones."""
        skip = {"id", "action", "call_control_id", "correlation_id"}
        values = self.model_dump(exclude_none=True, exclude=skip)
        values["command_id"] = self.telnyx_command_id()
        return values


class ForkStart(CallCommand):
    """Fork the call's RTP to UDP targets; without ``rx``/``tx``, media_ingest allocates its own ports."""

    action: Literal["fork_start"] = "fork_start"
    rx: str | None = Field(
        default=None, description="`udp:HOST:PORT` for the incoming leg (caller → Telnyx)."
    )
    tx: str | None = Field(
        default=None, description="`udp:HOST:PORT` for the outgoing leg (Telnyx → caller)."
    )
    stream_type: Literal["decrypted"] = "decrypted"

    @field_validator("rx", "tx")
    @classmethod
    def _udp_target(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = _UDP_TARGET.match(value)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError(f"must look like udp:HOST:PORT, got {value!r}")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> "ForkStart":
        if (self.rx is None) != (self.tx is None):
            raise ValueError("give both rx and tx, or neither (media_ingest then allocates them)")
        return self


class ForkStop(CallCommand):
    """Stop forking; media_ingest releases the call's ports (the recording goes on if forking resumes)."""

    action: Literal["fork_stop"] = "fork_stop"
    stream_type: Literal["raw", "decrypted"] = "decrypted"


class CustomParameter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: str


class DialogflowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    analyze_sentiment: bool | None = Field(
        default=None, description="Enable sentiment analysis from Dialogflow."
    )
    partial_automated_agent_reply: bool | None = Field(
        default=None, description="Enable partial automated agent replies from Dialogflow."
    )


class StreamingStart(CallCommand):
    """Stream the call's media over WebSocket; without ``stream_url``, to media_ingest's own endpoint."""

    action: Literal["streaming_start"] = "streaming_start"
    stream_url: str | None = Field(default=None, pattern=r"^wss?://")
    stream_track: StreamTrack | None = None
    stream_codec: StreamCodec | None = None
    stream_bidirectional_mode: BidirectionalMode | None = None
    stream_bidirectional_codec: BidirectionalCodec | None = None
    stream_bidirectional_sampling_rate: BidirectionalSamplingRate | None = None
    stream_bidirectional_target_legs: BidirectionalTargetLegs | None = None
    stream_auth_token: str | None = Field(default=None, max_length=4000)
    custom_parameters: list[CustomParameter] | None = None
    enable_dialogflow: bool | None = Field(
        default=None, description="Enable Dialogflow on the call (Telnyx's default: false)."
    )
    dialogflow_config: DialogflowConfig | None = None


class StreamingStop(CallCommand):
    """Stop the call's WebSocket media stream."""

    action: Literal["streaming_stop"] = "streaming_stop"
    stream_id: str | None = Field(
        default=None, description="Without it, every stream of the call stops."
    )


class TranscriptionStart(CallCommand):
    """Start Telnyx transcription; results arrive as call.transcription webhooks."""

    action: Literal["transcription_start"] = "transcription_start"
    transcription_engine: TranscriptionEngine | None = None
    transcription_engine_config: dict[str, Any] | None = None
    transcription_tracks: TranscriptionTracks | None = None


class TranscriptionStop(CallCommand):
    """Stop transcription."""

    action: Literal["transcription_stop"] = "transcription_stop"


Command = Annotated[
    ForkStart | ForkStop | StreamingStart | StreamingStop | TranscriptionStart | TranscriptionStop,
    Field(discriminator="action"),
]
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)


class CommandMessage(RootModel[Command]):
    """Any command, discriminated on ``action`` (the schema of the command topics)."""


def _action(model: type[CallCommand]) -> str:
    return str(model.model_fields["action"].default)


MEDIA_COMMAND_MODELS: tuple[type[CallCommand], ...] = (
    ForkStart,
    ForkStop,
    StreamingStart,
    StreamingStop,
)
TRANSCRIPTION_COMMAND_MODELS: tuple[type[CallCommand], ...] = (
    TranscriptionStart,
    TranscriptionStop,
)
COMMAND_MODELS: dict[str, type[CallCommand]] = {
    _action(m): m for m in MEDIA_COMMAND_MODELS + TRANSCRIPTION_COMMAND_MODELS
}
MEDIA_ACTIONS = frozenset(_action(m) for m in MEDIA_COMMAND_MODELS)
TRANSCRIPTION_ACTIONS = frozenset(_action(m) for m in TRANSCRIPTION_COMMAND_MODELS)


def topic_for(action: str) -> str:
    return topics.MEDIA_COMMANDS if action in MEDIA_ACTIONS else topics.TRANSCRIPTION_COMMANDS


def parse_command(body: bytes | str) -> Command:
    """Raises ``pydantic.ValidationError`` naming what is wrong."""
    return command_adapter.validate_json(body)


ErrorKind = Literal[
    "bad_key",
    "not_permitted",
    "unknown_call",
    "call_ended",
    "invalid_parameters",
    "rate_limited",
    "network",
    "telnyx_error",
    "no_capacity",
    "malformed",
    "internal",
]


class CommandResult(BaseModel):
    """The outcome of one command, on ``voicetap.command.result``."""

    id: str = Field(description="`result:<command id>`: one result per command.")
    command_id: str | None = Field(
        description="The command's own id (None when it was too malformed to have one)."
    )
    action: str | None
    call_control_id: str | None
    correlation_id: str | None = None
    ok: bool
    error: ErrorKind | None = None
    detail: str | None = None
    telnyx_errors: list[dict[str, Any]] | None = Field(
        default=None, description="Telnyx's own error objects, as sent."
    )
    telnyx_command_id: str | None = None
    allocated: dict[str, Any] | None = Field(
        default=None, description="What the command set up: ports, stream URL."
    )
    executed_by: str | None = None
    completed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
