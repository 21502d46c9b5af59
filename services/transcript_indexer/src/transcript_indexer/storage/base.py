"""The storage interface both back ends implement, and the values it returns."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from transcript_indexer.query import Node
from transcript_indexer.records import Batch, Partial, Segment

# Private-use characters mark highlights inside snippets; the API escapes the text, then turns
# them into <mark> tags, so a transcript can never inject markup.
MARK_START = "\ue000"
MARK_END = "\ue001"


class StorageUnavailable(Exception):
    """The database is down, locked or unreachable: try again later, never drop the batch."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_control_id: str
    call_session_id: str | None
    call_leg_id: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    state: str | None
    started_at: datetime
    start_time: datetime | None
    initiated_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: str | None
    hangup_source: str | None
    sip_hangup_cause: str | None
    completed_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in ((name, getattr(self, name)) for name in self.__slots__)
        }


@dataclass(frozen=True, slots=True)
class Transcript:
    call: CallInfo
    segments: list[Segment]  # ordered by time, track, event id
    partials: list[Partial]  # at most one per track


@dataclass(frozen=True, slots=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    numbers: tuple[str, ...] = ()  # spellings of one number, matching the caller or the callee
    text: Node | None = None  # calls with at least one matching segment


@dataclass(frozen=True, slots=True)
class SearchHit:
    call_control_id: str
    event_id: str
    occurred_at: datetime
    track: str
    snippet: str  # highlights between MARK_START and MARK_END
    rank: float  # higher is better


@dataclass(frozen=True, slots=True)
class DueCompletion:
    call_control_id: str
    revision: int  # the revision to publish: 1 for the first completion
    segment_seq: int  # the call's segment sequence when found due: what the revision covers


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch changed, for the live feed: new segments, and partials now current."""

    segments: list[Segment] = field(default_factory=list)
    partials: list[Partial] = field(default_factory=list)


class Storage(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def apply(self, batch: Batch, now: datetime) -> Applied:
        """Write ``batch`` in one transaction; raises :class:`StorageUnavailable` when it cannot."""

    async def get_call(self, call_control_id: str) -> CallInfo | None: ...

    async def counts(self, call_control_id: str) -> dict[str, int]:
        """Segments per track (``""``: unknown track), and ``partials``."""

    async def list_calls(self, where: CallFilter, limit: int, offset: int) -> list[CallInfo]:
        """Newest first."""

    async def transcript(self, call_control_id: str) -> Transcript | None: ...

    async def search(self, query: Node, limit: int, offset: int) -> list[SearchHit]:
        """Best first."""

    async def due_completions(self, quiet_since: datetime, limit: int) -> list[DueCompletion]:
        """Calls hung up, not completed or with segments stored since their last completed revision,
        and with no new segment or hang-up stored after ``quiet_since``."""

    async def mark_completed(
        self, call_control_id: str, revision: int, segment_seq: int, now: datetime
    ) -> None:
        """``revision``, covering segments up to ``segment_seq``, is published (no-op when a later one is)."""

    async def calls_of_numbers(self, numbers: tuple[str, ...]) -> list[str]:
        """Every call from or to one of ``numbers`` (spellings of one number)."""

    async def ended_before(self, before: datetime, limit: int) -> list[str]:
        """Calls that ended before ``before``, oldest end first (retention)."""

    async def erase_calls(self, call_control_ids: list[str]) -> dict[str, int]:
        """Delete the calls, their segments (full-text entries with them) and partials in one
        transaction; counts per kind (``calls``, ``transcript_segments``, ``partials``). Deleting
        what is already gone counts 0: erasing twice ends in the same state."""
