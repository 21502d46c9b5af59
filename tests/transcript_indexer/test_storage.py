"""The storage contract, run against SQLite and PostgreSQL alike."""

import asyncio
import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.transcript_indexer.indexer_events import (
    answered,
    at,
    entry,
    hangup,
    initiated,
    transcription,
)
from transcript_indexer.query import parse_query
from transcript_indexer.records import build_batch
from transcript_indexer.storage import create_storage
from transcript_indexer.storage import postgres as postgres_backend
from transcript_indexer.storage import sqlite as sqlite_backend
from transcript_indexer.storage.base import MARK_END, MARK_START, CallFilter, Storage

NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


async def apply(storage: Storage, *events: dict[str, object], now: datetime = NOW) -> None:
    await storage.apply(build_batch([entry(e) for e in events]), now)


async def test_interim_is_a_partial_until_its_final_replaces_it(storage: Storage) -> None:
    await apply(storage, transcription("c1", "hello wor", 1.0, final=False))
    transcript = await storage.transcript("c1")
    assert transcript is not None
    assert transcript.segments == [] and [p.text for p in transcript.partials] == ["hello wor"]

    await apply(storage, transcription("c1", "hello world", 1.5, final=False))
    transcript = await storage.transcript("c1")
    assert transcript is not None and [p.text for p in transcript.partials] == ["hello world"]

    await apply(storage, transcription("c1", "Hello world.", 2.0))
    transcript = await storage.transcript("c1")
    assert transcript is not None
    assert [s.text for s in transcript.segments] == ["Hello world."] and transcript.partials == []
    assert await storage.counts("c1") == {"segments": 1, "segments_inbound": 1, "partials": 0}


def _call_events(call: str) -> list[dict[str, object]]:
    events = [initiated(call, 0.0), answered(call, 1.0), hangup(call, 30.0)]
    for i in range(6):
        for track in ("inbound", "outbound"):
            base = 2.0 + i * 4 + (0.5 if track == "outbound" else 0)
            events.append(
                transcription(call, f"{track} interim {i}", base, final=False, track=track)
            )
            events.append(transcription(call, f"{track} final {i}", base + 1, track=track))
    events.append(
        transcription(call, "outbound trailing interim", 40.0, final=False, track="outbound")
    )
    events.append(transcription(call, "inbound stale interim", 3.5, final=False, track="inbound"))
    return events


async def _snapshot(storage: Storage, call: str) -> tuple[object, ...]:
    transcript = await storage.transcript(call)
    assert transcript is not None
    info = transcript.call.as_json()
    info.pop("call_control_id")
    return (
        info,
        [(s.event_id, s.occurred_at, s.track, s.text) for s in transcript.segments],
        [(p.event_id, p.occurred_at, p.track, p.text) for p in transcript.partials],
    )


async def test_any_order_any_duplicates_gives_the_same_result(storage: Storage) -> None:
    events = _call_events("c-order")
    for event in events:
        await apply(storage, event)
    expected = await _snapshot(storage, "c-order")
    info, segments, partials = expected
    assert len(segments) == 12 and [p[3] for p in partials] == ["outbound trailing interim"]
    assert (
        info["state"] == "hangup"
        and info["from_number"] == "+15551230001"
        and info["direction"] == "incoming"
    )

    rng = random.Random(7)
    for round_ in range(3):
        await _truncate(storage)
        shuffled = events + rng.sample(events, 10)  # each delivered at least once, some twice
        rng.shuffle(shuffled)
        while shuffled:  # random batch sizes, duplicates possibly inside one batch
            size = rng.randint(1, 8)
            await apply(storage, *shuffled[:size])
            shuffled = shuffled[size:]
        assert await _snapshot(storage, "c-order") == expected, f"round {round_}"


async def _truncate(storage: Storage) -> None:
    # Each back end's own statement: the contract has no delete, on purpose.
    if hasattr(storage, "_pool"):
        async with storage._pool.connection() as conn:  # type: ignore[attr-defined]
            await conn.execute("TRUNCATE calls, segments, partials")
    else:

        def work(conn: object) -> None:
            for table in ("calls", "segments", "partials"):
                conn.execute(f"DELETE FROM {table}")  # type: ignore[attr-defined]

        storage._write(work)  # type: ignore[attr-defined]


async def test_redelivered_initiated_never_moves_state_back(storage: Storage) -> None:
    first = initiated("c2", 0.0)
    await apply(storage, first, answered("c2", 1.0))
    await apply(storage, first)
    call = await storage.get_call("c2")
    assert call is not None and call.state == "answered" and call.answered_at == at(1.0)
    await apply(storage, hangup("c2", 9.0), first)
    call = await storage.get_call("c2")
    assert call is not None
    assert (call.state, call.ended_at, call.hangup_cause, call.initiated_at) == (
        "hangup",
        at(9.0),
        "normal_clearing",
        at(0.0),
    )


async def _due(storage: Storage, quiet_since: datetime) -> list[tuple[str, int]]:
    return [
        (due.call_control_id, due.revision)
        for due in await storage.due_completions(quiet_since, 10)
    ]


async def test_transcription_after_hangup_is_kept_and_delays_completion(storage: Storage) -> None:
    await apply(storage, initiated("c3"), hangup("c3", 10.0), now=NOW)
    assert await _due(storage, NOW) == [("c3", 1)]
    later = NOW + timedelta(seconds=3)
    await apply(storage, transcription("c3", "late words", 9.5), now=later)
    assert await _due(storage, NOW + timedelta(seconds=1)) == []
    [due] = await storage.due_completions(later, 10)
    assert (due.call_control_id, due.revision) == ("c3", 1)
    transcript = await storage.transcript("c3")
    assert transcript is not None and [s.text for s in transcript.segments] == ["late words"]
    await storage.mark_completed("c3", 1, due.segment_seq, later)
    assert await _due(storage, later + timedelta(hours=1)) == []
    call = await storage.get_call("c3")
    assert call is not None and call.completed_at == later


async def test_a_segment_stored_after_completion_makes_the_next_revision_due(
    storage: Storage,
) -> None:
    await apply(
        storage, initiated("r1"), transcription("r1", "hello", 1.0), hangup("r1", 5.0), now=NOW
    )
    [first] = await storage.due_completions(NOW, 10)
    assert first.revision == 1
    await storage.mark_completed("r1", 1, first.segment_seq, NOW)
    late = transcription("r1", "one more thing", 4.5)
    later = NOW + timedelta(seconds=10)
    await apply(storage, late, hangup("r1", 5.0), now=later)  # with a re-delivered hang-up
    assert (
        await _due(storage, later - timedelta(seconds=1)) == []
    )  # quiet for the settle time first
    [second] = await storage.due_completions(later, 10)
    assert second.revision == 2 and second.segment_seq > first.segment_seq
    # stored after the revision was found due (so maybe not in it): the mark does not cover it
    await apply(storage, transcription("r1", "and another", 4.8), now=later)
    await storage.mark_completed("r1", 2, second.segment_seq, later)
    [third] = await storage.due_completions(later, 10)
    assert third.revision == 3
    await storage.mark_completed(
        "r1", 1, first.segment_seq, later
    )  # a stale mark (a slower process) moves nothing back
    assert await _due(storage, later) == [("r1", 3)]
    await storage.mark_completed("r1", 3, third.segment_seq, later)
    # re-delivered: segments are not stored again, so no revision; nor from a hang-up or an interim
    await apply(
        storage,
        late,
        late,
        hangup("r1", 5.0),
        transcription("r1", "one more", 9.0, final=False),
        now=later + timedelta(minutes=1),
    )
    assert await _due(storage, later + timedelta(hours=1)) == []
    call = await storage.get_call("r1")
    assert call is not None and call.completed_at == NOW  # the first completion's time


async def test_search_ranks_and_highlights(storage: Storage) -> None:
    await apply(
        storage,
        transcription("s1", "I would like a refund for my order", 1.0),
        transcription("s1", "refund refund refund please", 2.0),
        transcription("s2", "the return policy is thirty days", 1.0),
        transcription("s2", "<b>refunds</b> take a week", 2.0),
    )
    hits = await storage.search(parse_query("refund"), 10, 0)
    assert [h.event_id for h in hits][:1] and hits[0].snippet.count(
        MARK_START
    ) == 3  # most matches first
    assert {h.call_control_id for h in hits} == {"s1"}
    assert hits[0].rank >= hits[1].rank
    assert f"{MARK_START}refund{MARK_END}" in hits[1].snippet
    prefix = await storage.search(parse_query("refund*"), 10, 0)
    assert len(prefix) == 3
    assert [
        h.call_control_id
        for h in await storage.search(parse_query('"return policy" OR week -refunds'), 10, 0)
    ] == ["s2"]
    assert len(await storage.search(parse_query("refund*"), 2, 2)) == 1  # second page
    assert await storage.search(parse_query("nothing"), 10, 0) == []


async def test_list_calls_filters_and_pages(storage: Storage) -> None:
    for i in range(5):
        call = f"l{i}"
        await apply(
            storage,
            initiated(call, i * 100.0, caller=f"+1555000000{i}"),
            transcription(call, "billing question" if i % 2 else "technical issue", i * 100.0 + 5),
        )
    calls = await storage.list_calls(CallFilter(), 2, 0)
    assert [c.call_control_id for c in calls] == ["l4", "l3"]
    assert [c.call_control_id for c in await storage.list_calls(CallFilter(), 2, 4)] == ["l0"]
    window = CallFilter(since=at(100.0), until=at(300.0))
    assert [c.call_control_id for c in await storage.list_calls(window, 10, 0)] == ["l2", "l1"]
    by_number = CallFilter(numbers=("+15550000003", "15550000003"))
    assert [c.call_control_id for c in await storage.list_calls(by_number, 10, 0)] == ["l3"]
    by_callee = CallFilter(numbers=("+15559870002",))
    assert len(await storage.list_calls(by_callee, 10, 0)) == 5
    by_text = CallFilter(text=parse_query("billing"))
    assert [c.call_control_id for c in await storage.list_calls(by_text, 10, 0)] == ["l3", "l1"]


async def test_call_without_lifecycle_events_is_listed_by_first_event(storage: Storage) -> None:
    await apply(storage, transcription("t1", "only words", 42.0, track=None))
    call = await storage.get_call("t1")
    assert call is not None and call.started_at == at(42.0) and call.state is None
    assert await storage.counts("t1") == {"segments": 1, "segments_unknown": 1, "partials": 0}
    await apply(storage, initiated("t1", 40.0))
    call = await storage.get_call("t1")
    assert call is not None and call.started_at == at(40.0)


@pytest.fixture
def empty_database_url(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database with no schema at all, on the back end of ``database_url``."""
    if database_url.startswith("sqlite:///"):
        yield f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
        return
    admin: str = request.getfixturevalue("postgres_admin_url")
    name = f"voicetap_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_old_calls(url: str) -> None:
    """Two hung-up calls as the schema before revisions held them: one completed, one not yet."""
    columns = "call_control_id, state_rank, first_event_at, started_at, last_activity_at, ended_at, completed_at"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executemany(
                f"INSERT INTO calls ({columns}) VALUES (?, 3, 0, 0, 0, 0, ?)",
                [("old-done", 1), ("old-open", None)],
            )
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for call, completed in (("old-done", NOW), ("old-open", None)):
            conn.execute(
                f"INSERT INTO calls ({columns}) VALUES (%s, 3, %s, %s, %s, %s, %s)",
                (call, NOW, NOW, NOW, NOW, completed),
            )


def _storage_at(url: str) -> Storage:
    """Another process's storage on the same database (``url`` names the file or server)."""
    return create_storage(url, Path(), sqlite_busy_timeout_ms=2000, pg_pool_size=4)


async def test_an_upgraded_database_keeps_its_completed_calls_at_revision_1(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = empty_database_url
    backend = sqlite_backend if url.startswith("sqlite:///") else postgres_backend
    revisions = next(  # the migration that brought revisions; the schema before it
        n
        for n, (_, statements) in enumerate(backend.MIGRATIONS)
        if any("completed_revision" in statement for statement in statements)
    )
    monkeypatch.setattr(backend, "MIGRATIONS", backend.MIGRATIONS[:revisions])
    before = _storage_at(url)
    await before.open()
    await before.close()
    await asyncio.to_thread(_insert_old_calls, url)
    monkeypatch.undo()
    upgraded = _storage_at(url)
    await upgraded.open()
    try:
        later = NOW + timedelta(hours=1)
        assert await _due(upgraded, later) == [("old-open", 1)]
        await upgraded.apply(
            build_batch([entry(transcription("old-done", "said after the upgrade", 1.0))]), NOW
        )
        assert sorted(await _due(upgraded, later)) == [("old-done", 2), ("old-open", 1)]
    finally:
        await upgraded.close()


async def test_migrations_apply_once(storage: Storage, database_url: str) -> None:
    again = _storage_at(database_url)
    await again.open()  # a second process starting on the same database
    await again.close()
    await apply(storage, transcription("m1", "still works", 1.0))
    assert await storage.counts("m1") == {"segments": 1, "segments_inbound": 1, "partials": 0}
