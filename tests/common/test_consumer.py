"""StreamConsumer against a real Redis: at-least-once, claim, dead-letter, retry in place."""

import asyncio
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from voicetap_common.consumer import ConsumerMetrics, ConsumerOptions, RetryLater, StreamConsumer, Undeliverable
from voicetap_common.streams import Entry, Producer

TOPIC = "test.topic"


def consumer_for(redis: Redis, handler, name: str, **options) -> StreamConsumer:  # type: ignore[no-untyped-def]
    opts = ConsumerOptions(group="g", topics=[TOPIC], consumer=name, block_ms=50, claim_interval_s=0, **options)
    return StreamConsumer(redis, Producer(redis, 10_000), opts, handler, ConsumerMetrics(CollectorRegistry()))


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


async def test_a_dead_consumers_entries_are_claimed_and_nothing_is_lost_or_doubled(redis: Redis) -> None:
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
    assert set(handled) == {f"ev-{i}" for i in range(10, 15)}, "new entries flow while the old ones are not yet idle"
    await asyncio.sleep(0.15)
    await drain(survivor, 3)
    assert handled == Counter({f"ev-{i}": 1 for i in range(15)})
    assert (await redis.xpending(TOPIC, "g"))["pending"] == 0


async def test_a_poison_entry_is_dead_lettered_with_its_error_and_the_rest_flows(redis: Redis) -> None:
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
