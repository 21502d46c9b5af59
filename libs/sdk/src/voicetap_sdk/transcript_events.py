"""voicetap's transcript events, shaped like Telnyx's own (``id``, ``event_type``, ``occurred_at``,
``payload``) so one reader handles both."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from voicetap_sdk.topics import TRANSCRIPT_COMPLETED


class TranscriptSegment(BaseModel):
    id: str
    occurred_at: datetime
    track: str | None
    text: str
    confidence: float | None


class TranscriptCompletedPayload(BaseModel):
    call_control_id: str
    revision: int = Field(
        default=1,
        ge=1,
        description="1 for the first publication; each final segment stored after a revision was published brings "
        "another, with the whole transcript, once the settle time passed again. The event id ends in `:<revision>`.",
    )
    call: dict[str, Any]
    segments: list[TranscriptSegment]
    text: str


class TranscriptCompleted(BaseModel):
    record_type: Literal["event"] = "event"
    event_type: Literal["voicetap.transcript.completed"] = TRANSCRIPT_COMPLETED
    id: str
    occurred_at: datetime
    payload: TranscriptCompletedPayload
