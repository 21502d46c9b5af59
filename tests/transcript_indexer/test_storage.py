"""The storage contract, run against SQLite and PostgreSQL alike."""

import random
from datetime import UTC, datetime, timedelta

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
            events.append(transcription(call, f"{track} interim {i}", base, final=False, track=track))
            events.append(transcription(call, f"{track} final {i}", base + 1, track=track))
    events.append(transcription(call, "outbound trailing interim", 40.0, final=False, track="outbound"))
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
    assert info["state"] == "hangup" and info["from_number"] == "+15551230001" and info["direction"] == "incoming"

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
    assert (call.state, call.ended_at, call.hangup_cause, call.initiated_at) == ("hangup", at(9.0), "normal_clearing", at(0.0))


async def test_transcription_after_hangup_is_kept_and_delays_completion(storage: Storage) -> None:
    await apply(storage, initiated("c3"), hangup("c3", 10.0), now=NOW)
    assert await storage.due_completions(NOW, 10) == ["c3"]
    later = NOW + timedelta(seconds=3)
    await apply(storage, transcription("c3", "late words", 9.5), now=later)
    assert await storage.due_completions(NOW + timedelta(seconds=1), 10) == []
    assert await storage.due_completions(later, 10) == ["c3"]
    transcript = await storage.transcript("c3")
    assert transcript is not None and [s.text for s in transcript.segments] == ["late words"]
    await storage.mark_completed("c3", later)
    assert await storage.due_completions(later + timedelta(hours=1), 10) == []
    call = await storage.get_call("c3")
    assert call is not None and call.completed_at == later


async def test_search_ranks_and_highlights(storage: Storage) -> None:
    await apply(
        storage,
        transcription("s1", "I would like a refund for my order", 1.0),
        transcription("s1", "refund refund refund please", 2.0),
        transcription("s2", "the return policy is thirty days", 1.0),
        transcription("s2", "<b>refunds</b> take a week", 2.0),
    )
    hits = await storage.search(parse_query("refund"), 10, 0)
    assert [h.event_id for h in hits][:1] and hits[0].snippet.count(MARK_START) == 3  # most matches first
    assert {h.call_control_id for h in hits} == {"s1"}
    assert hits[0].rank >= hits[1].rank
    assert f"{MARK_START}refund{MARK_END}" in hits[1].snippet
    prefix = await storage.search(parse_query("refund*"), 10, 0)
    assert len(prefix) == 3
    assert [h.call_control_id for h in await storage.search(parse_query('"return policy" OR week -refunds'), 10, 0)] == ["s2"]
    assert len(await storage.search(parse_query("refund*"), 2, 2)) == 1  # second page
    assert await storage.search(parse_query("nothing"), 10, 0) == []


async def test_list_calls_filters_and_pages(storage: Storage) -> None:
    for i in range(5):
        call = f"l{i}"
        await apply(storage, initiated(call, i * 100.0, caller=f"+1555000000{i}"),
                    transcription(call, "billing question" if i % 2 else "technical issue", i * 100.0 + 5))
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


async def test_migrations_apply_once(storage: Storage, database_url: str) -> None:
    from transcript_indexer.settings import IndexerSettings
    from transcript_indexer.storage import create_storage

    again = create_storage(IndexerSettings(indexer_database_url=database_url))
    await again.open()  # a second process starting on the same database
    await again.close()
    await apply(storage, transcription("m1", "still works", 1.0))
    assert await storage.counts("m1") == {"segments": 1, "segments_inbound": 1, "partials": 0}
