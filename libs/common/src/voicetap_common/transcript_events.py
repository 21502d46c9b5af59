"""voicetap's transcript events, shaped like Telnyx's own (``id``, ``event_type``, ``occurred_at``,
``payload``) so one reader handles both."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

TRANSCRIPT_COMPLETED = "voicetap.transcript.completed"


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
