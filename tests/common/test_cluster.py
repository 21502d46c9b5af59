"""StreamConsumer and CommandRunner on a three-node Redis Cluster: a group over topics in different
slots (and nodes) reads every one of them, delivers each entry once, claims a dead consumer's
entries, dead-letters a poison entry; a command is executed once."""

import asyncio
import time
from collections import Counter

from prometheus_client import CollectorRegistry
from redis.asyncio import RedisCluster

from tests.common.test_command_runner import SlowExecutor, instance, pending, publish, results
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk.commands import TranscriptionStop
from voicetap_sdk.consumer import ConsumerOptions, Handler, StreamConsumer
from voicetap_sdk.redis_client import connect
from voicetap_sdk.streams import Entry, Producer

# On the test cluster these hash to slots of all three nodes; the last shares the first one's slot
# (its hash tag is that topic's name), so one XREADGROUP reads those two together.
TOPICS = [
    "cluster.topic.0",
    "cluster.topic.1",
    "cluster.topic.3",
    "cluster.topic.4",
    "cluster.topic.7",
    "{cluster.topic.0}:side",
]


def consumer_for(
    redis: RedisCluster, handler: Handler, name: str, **options: object
) -> StreamConsumer:
    values: dict[str, object] = {"block_ms": 50, "claim_interval_s": 0, **options}
    opts = ConsumerOptions(group="g", topics=TOPICS, consumer=name, **values)  # type: ignore[arg-type]
    return StreamConsumer(
        redis,
        Producer(redis, 10_000),
        opts,
        handler,
        PrometheusConsumerMetrics(CollectorRegistry()),
    )


async def publish_each(redis: RedisCluster, count: int, start: int = 0) -> None:
    producer = Producer(redis, 10_000)
    for topic in TOPICS:
        for i in range(start, start + count):
            await producer.publish(topic, f"{topic}/{i}", "test", b"{}")


async def pending_total(redis: RedisCluster) -> int:
    return sum([int((await redis.xpending(topic, "g"))["pending"]) for topic in TOPICS])


def every_node(redis: RedisCluster) -> None:
    serving = {redis.get_node_from_key(topic).name for topic in TOPICS}
    assert serving == {node.name for node in redis.get_primaries()}, (
        "the topics must span every primary"
    )


async def test_two_consumers_over_topics_on_every_node_handle_each_entry_once(
    redis_cluster: RedisCluster,
) -> None:
    every_node(redis_cluster)
    assert redis_cluster.keyslot(TOPICS[0]) == redis_cluster.keyslot(TOPICS[-1])
    await publish_each(redis_cluster, 40)  # before the group exists: read from the beginning
    handled: Counter[str] = Counter()

    async def handle(entries: list[Entry]) -> None:
        handled.update(entry.event_id for entry in entries)

    consumers = [
        consumer_for(redis_cluster, handle, name, batch_size=25, claim_interval_s=5)
        for name in ("c1", "c2")
    ]
    await consumers[0].ensure_groups()
    stop = asyncio.Event()
    running = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
    await publish_each(redis_cluster, 40, start=40)  # while they run
    expected = {f"{topic}/{i}" for topic in TOPICS for i in range(80)}
    deadline = time.monotonic() + 10
    while set(handled) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*running), 5)
    assert handled == Counter(dict.fromkeys(expected, 1))
    assert await pending_total(redis_cluster) == 0


async def test_an_entry_on_one_node_does_not_wait_for_the_block_time_of_the_others(
    redis_cluster_url: str, redis_cluster: RedisCluster
) -> None:
    seen: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        seen.extend(entry.event_id for entry in entries)

    block_ms = 2000
    client = connect(redis_cluster_url, cluster=True, timeout_seconds=1.0, blocking_ms=block_ms)
    assert isinstance(client, RedisCluster)
    try:
        consumer = consumer_for(client, handle, "c1", block_ms=block_ms, claim_interval_s=60)
        await consumer.ensure_groups()
        reading = asyncio.create_task(consumer.run_once())
        await asyncio.sleep(0.2)  # every slot's read is blocking now
        started = time.monotonic()
        await Producer(redis_cluster, 10_000).publish("cluster.topic.3", "only", "test", b"{}")
        assert await asyncio.wait_for(reading, 5) == 1
        assert time.monotonic() - started < block_ms / 2000 and seen == ["only"]
        await (
            consumer.finish()
        )  # waits for the other reads: they come back empty at their block time
        assert seen == ["only"] and await pending_total(redis_cluster) == 0
    finally:
        await client.aclose()


async def test_a_dead_consumers_entries_on_every_node_are_claimed_once(
    redis_cluster: RedisCluster,
) -> None:
    await publish_each(redis_cluster, 5)

    async def crash(entries: list[Entry]) -> None:
        raise KeyboardInterrupt  # the process dies mid-batch, with reads of other slots in flight

    dying = consumer_for(redis_cluster, crash, "dying", claim_interval_s=60)
    await dying.ensure_groups()
    try:
        await dying.run_once()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the handler's crash must reach the caller")
    assert await pending_total(redis_cluster) > 0
    handled: Counter[str] = Counter()

    async def handle(entries: list[Entry]) -> None:
        handled.update(entry.event_id for entry in entries)

    survivor = consumer_for(redis_cluster, handle, "survivor", claim_idle_ms=100)
    expected = {f"{topic}/{i}" for topic in TOPICS for i in range(5)}
    deadline = time.monotonic() + 10
    while (
        set(handled) != expected or await pending_total(redis_cluster)
    ) and time.monotonic() < deadline:
        await survivor.run_once()
        await asyncio.sleep(0.02)
    await survivor.finish()
    assert handled == Counter(dict.fromkeys(expected, 1))
    assert await pending_total(redis_cluster) == 0


async def test_a_poison_entry_is_dead_lettered_with_its_last_error(
    redis_cluster: RedisCluster,
) -> None:
    await publish_each(redis_cluster, 3)
    poison = "cluster.topic.7/1"
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        if any(entry.event_id == poison for entry in entries):
            raise ValueError(f"cannot handle {poison}")
        handled.extend(entry.event_id for entry in entries)

    consumer = consumer_for(redis_cluster, handle, "c1", claim_idle_ms=0, max_deliveries=3)
    await consumer.ensure_groups()
    deadline = time.monotonic() + 10
    while not await redis_cluster.exists("cluster.topic.7.dlq") and time.monotonic() < deadline:
        await consumer.run_once()
    await consumer.finish()
    assert sorted(handled) == sorted(
        f"{topic}/{i}" for topic in TOPICS for i in range(3) if f"{topic}/{i}" != poison
    )
    [(_, fields)] = await redis_cluster.xrange("cluster.topic.7.dlq")
    assert fields[b"id"] == poison.encode() and fields[b"dlq_deliveries"] == b"3"
    assert f"cannot handle {poison}".encode() in fields[b"dlq_error"]
    assert await pending_total(redis_cluster) == 0


async def test_two_instances_racing_on_two_deliveries_of_a_command_execute_it_once(
    redis_cluster: RedisCluster,
) -> None:
    executor = SlowExecutor(0.3)
    command = TranscriptionStop(call_control_id="v3:cluster-race")
    await publish(redis_cluster, command, deliveries=2)
    a, b = (instance(redis_cluster, executor, name) for name in ("a", "b"))
    await a.ensure_groups()

    assert await asyncio.gather(a.run_once(), b.run_once()) == [1, 1]

    assert [command_id for _, command_id, _ in executor.executed] == [command.id]
    assert [result["command_id"] for result in await results(redis_cluster)] == [command.id]
    assert await pending(redis_cluster) == 0
