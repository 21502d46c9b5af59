"""From topic entries to the rows a batch writes: pure code, no I/O.

Every event becomes rows keyed so that applying them in any order, any number of times, gives
the same stored result:

- a lifecycle event (initiated, answered, hangup) becomes a :class:`CallUpdate`; a call's state only
  moves forward (initiated < answered < hangup), and each field keeps the first value seen;
- a final transcription becomes a :class:`Segment` keyed by its event id;
- an interim transcription becomes a :class:`Partial` for its call and track, kept only while it is
  newer than every final of that call and track.
"""

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from voicetap_sdk import codec
from voicetap_sdk.consumer import Undeliverable
from voicetap_sdk.events import (
    CallAnsweredEvent,
    CallHangupEvent,
    CallInitiatedEvent,
    CallTranscriptionEvent,
    parse_envelope,
)
from voicetap_sdk.streams import Entry

STATE_RANK = {"initiated": 1, "answered": 2, "hangup": 3}


@dataclass(frozen=True, slots=True)
class CallUpdate:
    call_control_id: str
    event_at: datetime
    call_session_id: str | None = None
    call_leg_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    state: str | None = None
    state_rank: int = 0
    start_time: datetime | None = None
    initiated_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: str | None = None
    hangup_source: str | None = None
    sip_hangup_cause: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A final result; ``track`` is ``""`` when the engine does not say (only engine B does)."""

    event_id: str
    call_control_id: str
    occurred_at: datetime
    track: str
    text: str
    confidence: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.event_id,
            "call_control_id": self.call_control_id,
            "occurred_at": self.occurred_at.isoformat(),
            "track": self.track or None,
            "text": self.text,
            "confidence": self.confidence,
        }


# An interim result has the same shape; only its storage differs.
Partial = Segment


_FIRST_WINS = tuple(
    f.name
    for f in fields(CallUpdate)
    if f.name not in ("call_control_id", "event_at", "state", "state_rank")
)


def merge_calls(first: CallUpdate, then: CallUpdate) -> CallUpdate:
    """``first`` then ``then`` applied to one call, exactly as the database applies two updates."""
    values: dict[str, Any] = {
        name: getattr(first, name) if getattr(first, name) is not None else getattr(then, name)
        for name in _FIRST_WINS
    }
    newer = then if then.state_rank > first.state_rank else first
    return CallUpdate(
        call_control_id=first.call_control_id,
        event_at=min(first.event_at, then.event_at),
        state=newer.state,
        state_rank=newer.state_rank,
        **values,
    )


@dataclass(slots=True)
class Batch:
    """A batch's rows, already reduced: one update per call, one segment per event id, the newest
    partial per call and track (so that one statement never touches a row twice)."""

    calls: dict[str, CallUpdate] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    partials: dict[tuple[str, str], Partial] = field(default_factory=dict)
    answered: list[tuple[str, str]] = field(default_factory=list)  # (call_control_id, event id)

    def add_call(self, update: CallUpdate) -> None:
        known = self.calls.get(update.call_control_id)
        if known is None:
            self.calls[update.call_control_id] = update
        elif update.state_rank or update.event_at < known.event_at:
            self.calls[update.call_control_id] = merge_calls(known, update)
        # else: a transcription's ids only, already known, later than what is known: nothing to merge

    def add_transcription(self, row: Segment, is_final: bool) -> None:
        if is_final:
            self.segments[row.event_id] = row
            return
        key = (row.call_control_id, row.track)
        known = self.partials.get(key)
        if known is None or (row.occurred_at, row.event_id) > (known.occurred_at, known.event_id):
            self.partials[key] = row


def _parse_received(raw: bytes) -> datetime | None:
    """The gateway's ``received_at``: epoch seconds or milliseconds, or ISO 8601."""
    text = raw.decode(errors="replace")
    try:
        seconds = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)


def event_time(occurred_at: datetime | None, entry: Entry) -> datetime:
    """When the event happened: Telnyx's ``occurred_at``, else the gateway's ``received_at``."""
    if occurred_at is not None:
        return occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
    value = _parse_received(entry.fields.get("received_at", b""))
    if value is None:
        raise Undeliverable(
            f"entry {entry.entry_id} has neither data.occurred_at nor a usable received_at"
        )
    return value


def build_batch(entries: list[Entry]) -> Batch:
    """Rows for ``entries``; raises :class:`Undeliverable` for any entry that can never be stored."""
    batch = Batch()
    for entry in entries:
        try:
            event = parse_envelope(entry.body).data
        except (ValidationError, codec.JSONDecodeError, ValueError) as exc:
            raise Undeliverable(
                f"entry {entry.entry_id} is not a valid webhook body: {exc}"
            ) from exc
        call_id = getattr(event.payload, "call_control_id", None)
        if not call_id:
            raise Undeliverable(f"event {event.id} has no call_control_id")
        at = event_time(event.occurred_at, entry)
        if isinstance(event, CallTranscriptionEvent):
            data = event.payload.transcription_data
            row = Segment(
                event.id,
                call_id,
                at,
                data.transcription_track or "",
                data.transcript,
                data.confidence,
            )
            batch.add_transcription(row, data.is_final)
            batch.add_call(
                CallUpdate(call_id, at, event.payload.call_session_id, event.payload.call_leg_id)
            )
        elif isinstance(event, CallInitiatedEvent):
            p = event.payload
            batch.add_call(
                CallUpdate(
                    call_id,
                    at,
                    p.call_session_id,
                    p.call_leg_id,
                    p.from_,
                    p.to,
                    p.direction,
                    "initiated",
                    STATE_RANK["initiated"],
                    p.start_time,
                    initiated_at=at,
                )
            )
        elif isinstance(event, CallAnsweredEvent):
            answered = event.payload
            batch.add_call(
                CallUpdate(
                    call_id,
                    at,
                    answered.call_session_id,
                    answered.call_leg_id,
                    answered.from_,
                    answered.to,
                    None,
                    "answered",
                    STATE_RANK["answered"],
                    answered.start_time,
                    answered_at=at,
                )
            )
            batch.answered.append((call_id, event.id))
        elif isinstance(event, CallHangupEvent):
            hangup = event.payload
            batch.add_call(
                CallUpdate(
                    call_id,
                    at,
                    hangup.call_session_id,
                    hangup.call_leg_id,
                    hangup.from_,
                    hangup.to,
                    None,
                    "hangup",
                    STATE_RANK["hangup"],
                    hangup.start_time,
                    ended_at=at,
                    hangup_cause=hangup.hangup_cause,
                    hangup_source=hangup.hangup_source,
                    sip_hangup_cause=hangup.sip_hangup_cause,
                )
            )
        else:
            raise Undeliverable(f"event type {event.event_type!r} is not one the indexer reads")
    return batch
