"""The voicetap events the indexer publishes, shaped like Telnyx's own (``id``, ``event_type``,
``occurred_at``, ``payload``) so one reader handles both."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

TRANSCRIPT_COMPLETED = "voicetap.transcript.completed"
COMMAND_FAILED = "voicetap.command.failed"


class TranscriptSegment(BaseModel):
    id: str
    occurred_at: datetime
    track: str | None
    text: str
    confidence: float | None


class TranscriptCompletedPayload(BaseModel):
    call_control_id: str
    call: dict[str, Any]
    segments: list[TranscriptSegment]
    text: str


class TranscriptCompleted(BaseModel):
    record_type: Literal["event"] = "event"
    event_type: Literal["voicetap.transcript.completed"] = TRANSCRIPT_COMPLETED
    id: str
    occurred_at: datetime
    payload: TranscriptCompletedPayload


class CommandFailedPayload(BaseModel):
    call_control_id: str
    command: str
    command_id: str
    status_code: int | None
    error_code: str | None
    detail: str
    caused_by: str  # the event id that triggered the command


class CommandFailed(BaseModel):
    record_type: Literal["event"] = "event"
    event_type: Literal["voicetap.command.failed"] = COMMAND_FAILED
    id: str
    occurred_at: datetime
    payload: CommandFailedPayload
