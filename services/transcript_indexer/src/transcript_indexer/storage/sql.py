"""What both back ends share: the logical schema's columns and the mapping of rows to values."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from transcript_indexer.records import CallUpdate, Segment
from transcript_indexer.storage.base import CallInfo

# calls columns in the order of CallInfo, as the SELECTs list them.
CALL_COLUMNS = (
    "call_control_id, call_session_id, call_leg_id, from_number, to_number, direction, state, started_at, "
    "start_time, initiated_at, answered_at, ended_at, hangup_cause, hangup_source, sip_hangup_cause, completed_at"
)
_CALL_TIMES = {7, 8, 9, 10, 11, 15}

SEGMENT_COLUMNS = "event_id, call_control_id, occurred_at, track, text, confidence"

# Filled in by each back end: the same statement, its own placeholders and functions.
CALL_UPSERT = """
INSERT INTO calls (call_control_id, call_session_id, call_leg_id, from_number, to_number, direction, state,
                   state_rank, first_event_at, start_time, initiated_at, answered_at, ended_at, started_at,
                   hangup_cause, hangup_source, sip_hangup_cause, last_activity_at)
VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, COALESCE({p}, {p}, {p}), {p}, {p}, {p}, {p})
ON CONFLICT (call_control_id) DO UPDATE SET
    call_session_id = COALESCE(calls.call_session_id, excluded.call_session_id),
    call_leg_id = COALESCE(calls.call_leg_id, excluded.call_leg_id),
    from_number = COALESCE(calls.from_number, excluded.from_number),
    to_number = COALESCE(calls.to_number, excluded.to_number),
    direction = COALESCE(calls.direction, excluded.direction),
    state = CASE WHEN excluded.state_rank > calls.state_rank THEN excluded.state ELSE calls.state END,
    state_rank = {greatest}(calls.state_rank, excluded.state_rank),
    first_event_at = {least}(calls.first_event_at, excluded.first_event_at),
    start_time = COALESCE(calls.start_time, excluded.start_time),
    initiated_at = COALESCE(calls.initiated_at, excluded.initiated_at),
    answered_at = COALESCE(calls.answered_at, excluded.answered_at),
    ended_at = COALESCE(calls.ended_at, excluded.ended_at),
    started_at = COALESCE(calls.start_time, excluded.start_time, calls.initiated_at, excluded.initiated_at,
                          {least}(calls.first_event_at, excluded.first_event_at)),
    hangup_cause = COALESCE(calls.hangup_cause, excluded.hangup_cause),
    hangup_source = COALESCE(calls.hangup_source, excluded.hangup_source),
    sip_hangup_cause = COALESCE(calls.sip_hangup_cause, excluded.sip_hangup_cause),
    last_activity_at = CASE WHEN excluded.ended_at IS NOT NULL THEN excluded.last_activity_at
                            ELSE calls.last_activity_at END
"""

# A final replaces the partials of its call and track that are not newer than it.
PARTIALS_SUPERSEDED = (
    "DELETE FROM partials WHERE call_control_id = {p} AND track = {p} AND occurred_at <= {p}"
)

# A partial is stored only when newer than the current one and than every final of its track.
PARTIAL_UPSERT = """
INSERT INTO partials AS p (event_id, call_control_id, occurred_at, track, text, confidence)
SELECT CAST({p} AS TEXT), CAST({p} AS TEXT), CAST({p} AS {ts}), CAST({p} AS TEXT), CAST({p} AS TEXT),
       CAST({p} AS {real})
WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.call_control_id = {p} AND s.track = {p} AND s.occurred_at >= {p})
ON CONFLICT (call_control_id, track) DO UPDATE SET
    event_id = excluded.event_id, occurred_at = excluded.occurred_at, text = excluded.text,
    confidence = excluded.confidence
WHERE (excluded.occurred_at, excluded.event_id) > (p.occurred_at, p.event_id)
RETURNING event_id
"""


def newest_finals(segments: Any, ts: Callable[[datetime | None], Any]) -> list[tuple[Any, ...]]:
    """(call, track, time of its newest final) once per call and track: the PARTIALS_SUPERSEDED rows."""
    newest: dict[tuple[str, str], datetime] = {}
    for segment in segments:
        key = (segment.call_control_id, segment.track)
        if key not in newest or segment.occurred_at > newest[key]:
            newest[key] = segment.occurred_at
    return [(call, track, ts(at)) for (call, track), at in sorted(newest.items())]


# New segments of a call: its quiet time starts again, and its segment sequence moves on, which
# makes a completed call due for its next revision.
# A call whose new segments were stored: the start of its quiet time, one more segment in its sequence
# (the WHERE clause follows: one call, or, where the driver takes arrays, many).
TOUCH_CALLS = (
    "UPDATE calls SET last_activity_at = {p}, segment_seq = segment_seq + 1 WHERE call_control_id"
)
TOUCH_CALL = TOUCH_CALLS + " = {p}"

# Calls due for their first completion, or for another revision (segments stored since the last),
# with the revision to publish and the segment sequence it covers. The sequence is read before the
# transcript is: a segment stored in between is in the published transcript and makes the call due
# once more (a revision too many, with the same text), never one too few.
DUE_COMPLETIONS = (
    "SELECT call_control_id, completed_revision + 1, segment_seq FROM calls"
    " WHERE ended_at IS NOT NULL AND (completed_at IS NULL OR segment_seq > completed_seq)"
    " AND last_activity_at <= {p} ORDER BY last_activity_at LIMIT {p}"
)
DUE_INDEX = (
    "CREATE INDEX calls_due ON calls (last_activity_at)"
    " WHERE ended_at IS NOT NULL AND (completed_at IS NULL OR segment_seq > completed_seq)"
)
# completed_at stays the time of the first completion; a stale mark never moves a call back.
MARK_COMPLETED = (
    "UPDATE calls SET completed_at = COALESCE(completed_at, {p}), completed_revision = {p}, completed_seq = {p}"
    " WHERE call_control_id = {p} AND completed_revision < {p}"
)


def call_params(
    update: CallUpdate, now: Any, ts: Callable[[datetime | None], Any]
) -> tuple[Any, ...]:
    u = update
    return (
        u.call_control_id,
        u.call_session_id,
        u.call_leg_id,
        u.from_number,
        u.to_number,
        u.direction,
        u.state,
        u.state_rank,
        ts(u.event_at),
        ts(u.start_time),
        ts(u.initiated_at),
        ts(u.answered_at),
        ts(u.ended_at),
        ts(u.start_time),
        ts(u.initiated_at),
        ts(u.event_at),
        u.hangup_cause,
        u.hangup_source,
        u.sip_hangup_cause,
        now,
    )


def partial_params(row: Segment, ts: Callable[[datetime | None], Any]) -> tuple[Any, ...]:
    at = ts(row.occurred_at)
    return (
        row.event_id,
        row.call_control_id,
        at,
        row.track,
        row.text,
        row.confidence,
        row.call_control_id,
        row.track,
        at,
    )


def call_from_row(row: Sequence[Any], dt: Callable[[Any], datetime | None]) -> CallInfo:
    values: list[Any] = [
        dt(value) if index in _CALL_TIMES else value for index, value in enumerate(row)
    ]
    return CallInfo(*values)


def segment_from_row(row: Sequence[Any], dt: Callable[[Any], datetime | None]) -> Segment:
    event_id, call_control_id, occurred_at, track, text, confidence = row
    at = dt(occurred_at)
    assert at is not None
    return Segment(event_id, call_control_id, at, track, text, confidence)


def numbers_clause(numbers: Sequence[str], p: str) -> tuple[str, list[str]]:
    marks = ", ".join([p] * len(numbers))
    return f"(from_number IN ({marks}) OR to_number IN ({marks}))", [*numbers, *numbers]


# Retention: calls ended before a time, oldest first (served by the calls_ended index).
ENDED_BEFORE = (
    "SELECT call_control_id FROM calls WHERE ended_at IS NOT NULL AND ended_at < {p}"
    " ORDER BY ended_at LIMIT {p}"
)
ENDED_INDEX = "CREATE INDEX calls_ended ON calls (ended_at) WHERE ended_at IS NOT NULL"

# Erasure, in this order in one transaction; each takes the list of call ids.
ERASE_STATEMENTS = (
    ("transcript_segments", "DELETE FROM segments WHERE call_control_id IN ({ids})"),
    ("partials", "DELETE FROM partials WHERE call_control_id IN ({ids})"),
    ("calls", "DELETE FROM calls WHERE call_control_id IN ({ids})"),
)
