"""The events of retention and erasure: a request, each service's part of it, and a call gone.
Every one carries ids only, never what was said (``voicetap_common.erasure`` runs them)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from voicetap_sdk.topics import ERASURE_PROGRESS, ERASURE_REQUESTED

Reason = Literal["requested", "expired"]
GoneTopic = Literal["voicetap.call.erased", "voicetap.call.expired"]


class ErasureRequest(BaseModel):
    """One call (``call_control_id``) or every call from or to ``number``: exactly one is set."""

    record_type: Literal["event"] = "event"
    event_type: Literal["voicetap.erasure.requested"] = ERASURE_REQUESTED
    id: str = Field(description="The request's id; every part's progress names it.")
    occurred_at: datetime
    reason: Reason = Field(
        default="requested",
        description="`requested` (voicetap erase, DELETE /calls/{id}) or `expired` (VOICETAP_RETENTION_DAYS).",
    )
    call_control_id: str | None = None
    number: str | None = Field(default=None, description="E.164, e.g. `+15551230000`.")


class ErasureProgress(BaseModel):
    """One service's part of a request, done: the calls it covered and what it removed, per kind."""

    record_type: Literal["event"] = "event"
    event_type: Literal["voicetap.erasure.progress"] = ERASURE_PROGRESS
    id: str
    occurred_at: datetime
    request_id: str
    reason: Reason = "requested"
    part: str = Field(
        description="`transcript_indexer`, or `media_ingest.erasure:<instance>` for one ingest instance."
    )
    call_control_ids: list[str]
    removed: dict[str, int] = Field(
        description="Count per kind: calls, transcript_segments, partials, live_streams, topic_entries, "
        "recordings, live_recordings."
    )


class CallGone(BaseModel):
    """A call erased (``voicetap.call.erased``) or expired (``voicetap.call.expired``): ids only, so
    that a consumer can erase what it derived from the call."""

    record_type: Literal["event"] = "event"
    event_type: GoneTopic
    id: str
    occurred_at: datetime
    call_control_id: str
    request_id: str
    reason: Reason
