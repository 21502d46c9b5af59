"""StreamConsumer against a real Redis: at-least-once, claim, dead-letter, retry in place.

Every test runs with read-ahead on (the default) and off; the tests at the end prove what
read-ahead must keep: nothing acknowledged before its handler returned, RetryLater in place,
entries read ahead still claimable when the process dies, stop() acknowledging only what was
handled, and claim cycles running without taking the entries read ahead.
"""

import asyncio
import contextlib
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk.consumer import (
    ConsumerOptions,
    RetryLater,
    StreamConsumer,
    Undeliverable,
)
from voicetap_sdk.streams import Entry, Producer

TOPIC = "test.topic"
READ_AHEAD = {"read_ahead": True}


@pytest.fixture(autouse=True, params=[True, False], ids=["read_ahead", "sequential"])
def read_ahead(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setitem(READ_AHEAD, "read_ahead", request.param)
    return bool(request.param)


def consumer_for(redis: Redis, handler, name: str, **options) -> StreamConsumer:  # type: ignore[no-untyped-def]
    values = {"block_ms": 50, "claim_interval_s": 0, **READ_AHEAD, **options}
    opts = ConsumerOptions(group="g", topics=[TOPIC], consumer=name, **values)
    return StreamConsumer(
        redis,
        Producer(redis, 10_000),
        opts,
        handler,
        PrometheusConsumerMetrics(CollectorRegistry()),
    )


async def pending_ids(redis: Redis, consumer: str | None = None) -> set[str]:
    rows = await redis.xpending_range(
        TOPIC, "g", min="-", max="+", count=10_000, consumername=consumer
    )
    return {row["message_id"].decode() for row in rows}


async def entry_ids(redis: Redis) -> dict[str, str]:
    """event id -> entry id of everything on the topic."""
    return {
        fields[b"id"].decode(): entry_id.decode() for entry_id, fields in await redis.xrange(TOPIC)
    }


async def publish(redis: Redis, count: int, start: int = 0) -> None:
    producer = Producer(redis, 10_000)
    for i in range(start, start + count):
        await producer.publish(TOPIC, f"ev-{i}", "test", b'{"n": %d}' % i)


async def drain(consumer: StreamConsumer, rounds: int = 20) -> None:
    for _ in range(rounds):
        await consumer.run_once()


async def test_a_new_group_reads_entries_written_before_it_existed(redis: Redis) -> None:
    await publish(redis, 5)
    seen: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        seen.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1")
    await consumer.ensure_groups()
    await drain(consumer, 3)
    assert seen == [f"ev-{i}" for i in range(5)]
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0


async def test_a_group_from_now_skips_history(redis: Redis) -> None:
    await publish(redis, 3)
    seen: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        seen.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1", start="now")
    await consumer.ensure_groups()
    await publish(redis, 2, start=3)
    await drain(consumer, 3)
    assert seen == ["ev-3", "ev-4"]


async def test_a_dead_consumers_entries_are_claimed_and_nothing_is_lost_or_doubled(
    redis: Redis,
) -> None:
    await publish(redis, 10)

    async def crash(entries: list[Entry]) -> None:
        raise KeyboardInterrupt  # the process dies mid-batch: nothing acknowledged

    dying = consumer_for(redis, crash, "dying")
    await dying.ensure_groups()
    with pytest.raises(KeyboardInterrupt):
        await dying.run_once()
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 10

    handled: Counter[str] = Counter()

    async def handle(entries: list[Entry]) -> None:
        handled.update(e.event_id for e in entries)

    survivor = consumer_for(redis, handle, "survivor", claim_idle_ms=100)
    await publish(redis, 5, start=10)
    await drain(survivor, 2)
    assert set(handled) == {f"ev-{i}" for i in range(10, 15)}, (
        "new entries flow while the old ones are not yet idle"
    )
    await asyncio.sleep(0.15)
    await drain(survivor, 3)
    assert handled == Counter({f"ev-{i}": 1 for i in range(15)})
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0


async def test_a_consumer_restarted_under_its_name_takes_its_pending_entries_back_at_once(
    redis: Redis,
) -> None:
    """Restart in place: no claim bound to wait for, each entry handled once, in order, before
    anything new; an entry that kills every life of the process is dead-lettered in the end."""
    await publish(redis, 6)

    async def crash(entries: list[Entry]) -> None:
        raise KeyboardInterrupt  # killed mid-batch: nothing acknowledged

    dying = consumer_for(redis, crash, "ingest-w0", batch_size=4)
    await dying.ensure_groups()
    with pytest.raises(KeyboardInterrupt):
        await dying.run_once()
    assert len(await pending_ids(redis, "ingest-w0")) == 4
    await publish(redis, 2, start=6)

    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        handled.extend(e.event_id for e in entries)

    again = consumer_for(redis, handle, "ingest-w0", batch_size=4, claim_idle_ms=60_000)
    stop = asyncio.Event()
    running = asyncio.create_task(again.run(stop))
    for _ in range(100):
        if len(handled) == 8:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert handled == [f"ev-{i}" for i in range(8)]  # its own first, then the rest, once each
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0

    await publish(redis, 1, start=100)
    for _ in range(4):  # three lives killed by the entry; the fourth dead-letters it
        poisoned = consumer_for(redis, crash, "ingest-w0", max_deliveries=3)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        with contextlib.suppress(KeyboardInterrupt):
            await poisoned.run(stop)
    assert [f[b"id"] for _, f in await redis.xrange(f"{TOPIC}.dlq")] == [b"ev-100"]
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0


async def test_a_poison_entry_is_dead_lettered_with_its_error_and_the_rest_flows(
    redis: Redis,
) -> None:
    await publish(redis, 6)
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        if any(e.event_id == "ev-3" for e in entries):
            raise ValueError("cannot handle ev-3")
        handled.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1", claim_idle_ms=0, max_deliveries=3)
    await consumer.ensure_groups()
    await drain(consumer, 10)
    assert sorted(handled) == ["ev-0", "ev-1", "ev-2", "ev-4", "ev-5"]
    dead = await redis.xrange(TOPIC + ".dlq")
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"id"] == b"ev-3"
    assert fields[b"dlq_deliveries"] == b"3"
    assert b"cannot handle ev-3" in fields[b"dlq_error"]
    assert fields[b"dlq_group"] == b"g"
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0


async def test_an_undeliverable_entry_is_dead_lettered_at_once(redis: Redis) -> None:
    await publish(redis, 3)
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        for e in entries:
            if e.event_id == "ev-1":
                raise Undeliverable("malformed command")
        handled.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1")
    await consumer.ensure_groups()
    await drain(consumer, 2)
    assert handled == ["ev-0", "ev-2"]
    dead = await redis.xrange(TOPIC + ".dlq")
    assert [f[b"id"] for _, f in dead] == [b"ev-1"]
    assert b"malformed command" in dead[0][1][b"dlq_error"]


async def test_retry_later_retries_in_place_without_counting_deliveries(redis: Redis) -> None:
    await publish(redis, 4)
    attempts = 0
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise RetryLater("database is locked")
        handled.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1", max_deliveries=1)
    await consumer.ensure_groups()
    await drain(consumer, 2)
    assert handled == [f"ev-{i}" for i in range(4)]
    assert attempts == 4
    assert await redis.exists(TOPIC + ".dlq") == 0


async def test_run_survives_redis_errors_and_stops_on_request(redis: Redis) -> None:
    await publish(redis, 2)
    seen: list[str] = []
    stop = asyncio.Event()

    async def handle(entries: list[Entry]) -> None:
        seen.extend(e.event_id for e in entries)
        if len(seen) >= 2:
            stop.set()

    consumer = consumer_for(redis, handle, "c1")
    await asyncio.wait_for(consumer.run(stop), 5)
    assert seen == ["ev-0", "ev-1"]


async def test_the_next_batch_is_read_while_the_handler_runs_and_acked_only_after_it_returned(
    redis: Redis, read_ahead: bool
) -> None:
    await publish(redis, 6)
    ids = await entry_ids(redis)
    release = asyncio.Event()
    inside = asyncio.Event()
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        if entries[0].event_id == "ev-0":
            inside.set()
            await release.wait()
        handled.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "c1", batch_size=3, claim_interval_s=60)
    await consumer.ensure_groups()
    first = asyncio.create_task(consumer.run_once())
    await asyncio.wait_for(inside.wait(), 5)
    await asyncio.sleep(0.02)  # time for a read ahead to come back
    pending = await pending_ids(redis, "c1")
    first_batch = {ids[f"ev-{i}"] for i in range(3)}
    second_batch = {ids[f"ev-{i}"] for i in range(3, 6)}
    assert first_batch <= pending, "nothing is acknowledged while its handler runs"
    assert (second_batch <= pending) is read_ahead, (
        "the next batch is read (pending, unhandled) only with read-ahead"
    )
    release.set()
    assert await first == 3
    assert await consumer.run_once() == 3
    await consumer.finish()
    assert handled == [f"ev-{i}" for i in range(6)]
    assert await pending_ids(redis) == set()


async def test_an_ack_is_not_held_back_by_a_read_ahead_waiting_for_entries(redis: Redis) -> None:
    await publish(redis, 2)
    consumer = consumer_for(redis, _noop, "c1", block_ms=2000, claim_interval_s=60)
    await consumer.ensure_groups()
    assert await consumer.run_once() == 2
    # the read ahead is blocked for up to 2 s on an empty topic; the batch is acknowledged already
    assert await pending_ids(redis) == set()
    await publish(redis, 1, start=2)
    assert await consumer.run_once() == 1
    await consumer.finish()
    assert await pending_ids(redis) == set()


async def _noop(entries: list[Entry]) -> None:
    return None


async def test_retry_later_with_a_batch_read_ahead_retries_the_same_batch_and_keeps_order(
    redis: Redis,
) -> None:
    await publish(redis, 6)
    calls: list[list[str]] = []

    async def handle(entries: list[Entry]) -> None:
        calls.append([e.event_id for e in entries])
        if len(calls) <= 3:
            await asyncio.sleep(0.02)  # the read ahead comes back meanwhile
            raise RetryLater("database is locked")

    consumer = consumer_for(
        redis, handle, "c1", batch_size=3, max_deliveries=1, claim_interval_s=60
    )
    await consumer.ensure_groups()
    await drain(consumer, 3)
    await consumer.finish()
    first, second = [f"ev-{i}" for i in range(3)], [f"ev-{i}" for i in range(3, 6)]
    assert calls == [first, first, first, first, second]
    assert await pending_ids(redis) == set()
    assert await redis.exists(TOPIC + ".dlq") == 0


async def test_entries_read_ahead_by_a_consumer_that_dies_stay_pending_and_are_claimed(
    redis: Redis, read_ahead: bool
) -> None:
    await publish(redis, 9)
    ids = await entry_ids(redis)
    handled: Counter[str] = Counter()
    inside = asyncio.Event()

    async def dies_in_second_batch(entries: list[Entry]) -> None:
        if entries[0].event_id == "ev-3":
            inside.set()
            await asyncio.sleep(3600)  # the process is killed here
        handled.update(e.event_id for e in entries)

    dying = consumer_for(redis, dies_in_second_batch, "dying", batch_size=3, claim_interval_s=60)
    await dying.ensure_groups()
    assert await dying.run_once() == 3
    task = asyncio.create_task(dying.run_once())
    await asyncio.wait_for(inside.wait(), 5)
    await asyncio.sleep(0.02)
    held = await pending_ids(redis, "dying")
    task.cancel()  # the process dies: its handler and its read in flight stop mid-way
    with pytest.raises(asyncio.CancelledError):
        await task
    unhandled = {ids[f"ev-{i}"] for i in range(3, 9 if read_ahead else 6)}
    assert unhandled <= held, (
        "the batch being handled and the one read ahead are pending, not acknowledged"
    )

    survivor = consumer_for(
        redis, lambda entries: _count(handled, entries), "survivor", claim_idle_ms=100
    )
    await asyncio.sleep(0.15)
    await drain(survivor, 4)
    await survivor.finish()
    assert set(handled) == {f"ev-{i}" for i in range(9)}
    assert all(handled[f"ev-{i}"] == 1 for i in range(3, 9)), (
        "nothing unhandled was acknowledged, nothing handled twice"
    )
    assert await pending_ids(redis) == set()


async def _count(counter: Counter[str], entries: list[Entry]) -> None:
    counter.update(e.event_id for e in entries)


async def test_stop_acknowledges_exactly_what_was_handled(redis: Redis) -> None:
    await publish(redis, 12)
    ids = await entry_ids(redis)
    stop = asyncio.Event()
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        await asyncio.sleep(0.02)  # the read ahead comes back while this runs
        handled.extend(e.event_id for e in entries)
        if len(handled) >= 3:
            stop.set()

    consumer = consumer_for(redis, handle, "c1", batch_size=3, claim_interval_s=60)
    await asyncio.wait_for(consumer.run(stop), 5)
    pending = await pending_ids(redis)
    [group] = await redis.xinfo_groups(TOPIC)
    last = _id_key(group["last-delivered-id"].decode())
    delivered = {event for event, entry in ids.items() if _id_key(entry) <= last}
    acknowledged = delivered - {event for event, entry in ids.items() if entry in pending}
    assert len(handled) == len(set(handled)) and len(handled) in (3, 6)
    assert acknowledged == set(handled), (
        "acknowledged = handled: nothing read ahead is acknowledged unhandled"
    )
    assert pending == {ids[e] for e in delivered - set(handled)}, (
        "read but not handled: still pending, claimable"
    )


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


async def test_claim_cycles_run_with_read_ahead_and_never_take_the_entries_read_ahead(
    redis: Redis,
) -> None:
    await publish(redis, 4)
    handled: Counter[str] = Counter()

    async def crash(entries: list[Entry]) -> None:
        raise KeyboardInterrupt

    dying = consumer_for(redis, crash, "dying")
    await dying.ensure_groups()
    with pytest.raises(KeyboardInterrupt):
        await dying.run_once()

    async def handle(entries: list[Entry]) -> None:
        await asyncio.sleep(0.01)
        handled.update(e.event_id for e in entries)

    # claim on every step, nothing too young to claim: the claim cycle sees this consumer's own
    # read-ahead entries as pending and idle, and must leave them to the read that holds them
    consumer = consumer_for(redis, handle, "c1", batch_size=2, claim_idle_ms=0, claim_interval_s=0)
    await publish(redis, 8, start=4)
    await drain(consumer, 12)
    await consumer.finish()
    assert handled == Counter({f"ev-{i}": 1 for i in range(12)})
    assert await pending_ids(redis) == set()


async def consumer_names(redis: Redis) -> set[str]:
    return {c["name"].decode() for c in await redis.xinfo_consumers(TOPIC, "g")}


async def test_a_clean_stop_removes_the_consumer_from_the_group(redis: Redis) -> None:
    await publish(redis, 2)
    stop = asyncio.Event()

    async def handle(entries: list[Entry]) -> None:
        stop.set()

    await asyncio.wait_for(consumer_for(redis, handle, "c1").run(stop), 5)
    assert await pending_ids(redis) == set()
    assert await consumer_names(redis) == set(), "a stopped consumer is no ghost in XINFO"


async def test_a_stopping_consumer_that_still_holds_entries_stays_so_they_can_be_claimed(
    redis: Redis,
) -> None:
    await publish(redis, 1)
    stop = asyncio.Event()

    async def fail(entries: list[Entry]) -> None:
        stop.set()
        raise ValueError("boom")  # the entry stays pending under c1

    await asyncio.wait_for(consumer_for(redis, fail, "c1", claim_interval_s=60).run(stop), 5)
    assert await pending_ids(redis, "c1") != set()
    assert await consumer_names(redis) == {"c1"}


async def test_idle_consumers_with_nothing_pending_are_pruned_and_holders_kept(
    redis: Redis,
) -> None:
    await publish(redis, 2)
    await redis.xgroup_create(TOPIC, "g", id="0")
    await redis.xreadgroup("g", "ghost-holding", {TOPIC: ">"}, count=1)  # keeps 1 pending
    await redis.xreadgroup("g", "ghost-empty", {TOPIC: ">"}, count=1)
    await redis.xack(TOPIC, "g", (await redis.xrange(TOPIC))[1][0])
    await asyncio.sleep(0.3)
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        handled.extend(e.event_id for e in entries)

    consumer = consumer_for(redis, handle, "live", ghost_idle_ms=200, claim_idle_ms=60_000)
    await consumer.run_once()  # a claim cycle: prunes
    assert await consumer_names(redis) == {"ghost-holding", "live"}
    fresh = consumer_for(redis, handle, "fresh", ghost_idle_ms=200, claim_idle_ms=60_000)
    await redis.xreadgroup("g", "recent", {TOPIC: ">"}, count=1)  # idle 0: not a ghost
    await fresh.run_once()
    assert "recent" in await consumer_names(redis)
