"""Topic partitions (TOPIC_PARTITIONS=4): the naming and the partition function, then the producer
and a consumer group on a single server and on the three-node cluster: one call's events on one
partition in order, calls spread over every partition, each entry read once across partitions,
a dead consumer's entries claimed, a poison entry dead-lettered to the topic's one dead-letter topic."""

import asyncio
import time
import zlib
from collections import Counter, defaultdict

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk import partitions
from voicetap_sdk.consumer import ConsumerOptions, Handler, StreamConsumer
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry, Producer
from voicetap_sdk.topics import (
    CALL_HANGUP,
    CALL_TRANSCRIPTION,
    WEBHOOK_DEAD_LETTERS,
    dedupe_key,
    dlq_topic,
)

N = 4
TOPICS = [CALL_TRANSCRIPTION, CALL_HANGUP]
COMMANDS = "voicetap.command.transcription"  # not partitioned: read by the same group as it is
CALLS = [f"v3:call-{i}" for i in range(40)]


def test_partition_names_and_the_partition_function() -> None:
    assert partitions.partition_of("v3:call-1", 4) == zlib.crc32(b"v3:call-1") % 4 == 0  # 152699728
    assert partitions.partition_of("v3:call-1", 7) == 152699728 % 7
    assert partitions.partition_of(None, 4) == partitions.partition_of("", 4) == 0
    assert partitions.stream_for(CALL_HANGUP, "v3:call-1", 4) == "telnyx.call.hangup:p0"
    assert partitions.streams_of(CALL_HANGUP, 3) == [
        "telnyx.call.hangup:p0",
        "telnyx.call.hangup:p1",
        "telnyx.call.hangup:p2",
    ]
    # N = 1 is no partitioning at all: the topic is its one stream.
    assert partitions.stream_for(
        CALL_HANGUP, "v3:call-1", 1
    ) == CALL_HANGUP and partitions.streams_of(CALL_HANGUP, 1) == [CALL_HANGUP]
    for topic in (
        "telnyx.call.bridged",
        "voicetap.media.analytics",
        "voicetap.recording.completed",
        "voicetap.transcript.completed",
    ):
        assert partitions.is_partitioned(topic), topic
    for topic in (
        dlq_topic(CALL_HANGUP),
        WEBHOOK_DEAD_LETTERS,
        COMMANDS,
        "voicetap.command.result",
        "voicetap.media.playback",
        "telnyx.call.hangup:p2",
    ):
        assert not partitions.is_partitioned(topic) and partitions.streams_of(topic, N) == [
            topic
        ], topic
    # No hash tag ties the partitions together, nor a partition to another topic's.
    assert (
        len({key_slot(stream.encode()) for stream in partitions.streams_of(CALL_TRANSCRIPTION, N)})
        == N
    )
    assert key_slot(dedupe_key("telnyx.call.hangup:p2", "ev").encode()) == key_slot(
        b"telnyx.call.hangup:p2"
    )


async def test_one_calls_events_stay_in_order_on_one_partition_and_calls_spread_over_all(
    any_redis: RedisClient,
) -> None:
    producer = Producer(any_redis, 10_000, N)
    for n in range(5):
        for call in CALLS:
            await producer.publish(
                CALL_TRANSCRIPTION, f"{call}/{n}", "call.transcription", b"{}", call_control_id=call
            )
    await producer.publish(CALL_TRANSCRIPTION, "no-call", "call.transcription", b"{}")
    assert not await any_redis.exists(CALL_TRANSCRIPTION)
    where: dict[str, set[str]] = defaultdict(set)
    order: dict[str, list[str]] = defaultdict(list)
    for stream in partitions.streams_of(CALL_TRANSCRIPTION, N):
        for _, fields in await any_redis.xrange(stream):
            call = fields.get(b"call_control_id", b"").decode()
            where[call].add(stream)
            order[call].append(fields[b"id"].decode())
    assert where.pop("") == {"telnyx.call.transcription:p0"} and order.pop("") == [
        "no-call"
    ]  # no call: partition 0
    assert all(
        streams == {partitions.stream_for(CALL_TRANSCRIPTION, call, N)}
        for call, streams in where.items()
    )
    assert all(ids == [f"{call}/{n}" for n in range(5)] for call, ids in order.items())
    assert {stream for streams in where.values() for stream in streams} == set(
        partitions.streams_of(CALL_TRANSCRIPTION, N)
    )
    if isinstance(any_redis, RedisCluster):
        served = {
            any_redis.get_node_from_key(stream).name
            for stream in partitions.streams_of(CALL_TRANSCRIPTION, N)
        }
        assert served == {node.name for node in any_redis.get_primaries()}, (
            "one topic's partitions spread over every node"
        )


async def test_publish_once_de_duplicates_on_the_calls_partition(any_redis: RedisClient) -> None:
    producer = Producer(any_redis, 10_000, N)
    first = await producer.publish_once(
        CALL_HANGUP, "ev-1", "call.hangup", b"{}", call_control_id="v3:call-7"
    )
    again = await producer.publish_once(
        CALL_HANGUP, "ev-1", "call.hangup", b"{}", call_control_id="v3:call-7"
    )
    stream = partitions.stream_for(CALL_HANGUP, "v3:call-7", N)
    assert first is not None and again is None
    assert await any_redis.xlen(stream) == 1 and await any_redis.exists(dedupe_key(stream, "ev-1"))


def consumer_for(
    any_redis: RedisClient, handler: Handler, name: str, **options: object
) -> StreamConsumer:
    values: dict[str, object] = {"block_ms": 50, "claim_interval_s": 0, "partitions": N, **options}
    opts = ConsumerOptions(group="g", topics=[*TOPICS, COMMANDS], consumer=name, **values)  # type: ignore[arg-type]
    return StreamConsumer(
        any_redis,
        Producer(any_redis, 10_000, N),
        opts,
        handler,
        PrometheusConsumerMetrics(CollectorRegistry()),
    )


async def publish_calls(any_redis: RedisClient, count: int, start: int = 0) -> set[str]:
    """``count`` events per call on each topic, and one command per call; their event ids."""
    producer = Producer(any_redis, 10_000, N)
    ids: set[str] = set()
    for call in CALLS:
        for topic in TOPICS:
            for i in range(start, start + count):
                await producer.publish(
                    topic, f"{topic}/{call}/{i}", "test", b"{}", call_control_id=call
                )
                ids.add(f"{topic}/{call}/{i}")
        await producer.publish(COMMANDS, f"cmd/{call}/{start}", "test", b"{}", call_control_id=call)
        ids.add(f"cmd/{call}/{start}")
    return ids


async def pending_total(any_redis: RedisClient) -> int:
    streams = [
        stream for topic in [*TOPICS, COMMANDS] for stream in partitions.streams_of(topic, N)
    ]
    return sum([int((await any_redis.xpending(stream, "g"))["pending"]) for stream in streams])


async def test_a_group_reads_every_partition_and_handles_each_entry_once_in_call_order(
    any_redis: RedisClient,
) -> None:
    expected = await publish_calls(any_redis, 3)  # before the group exists: read from the beginning
    handled: Counter[str] = Counter()
    order: dict[tuple[str, str, str], list[int]] = defaultdict(
        list
    )  # (consumer, topic, call): event numbers handled
    wrong: list[Entry] = []

    def handler_of(name: str) -> Handler:
        async def handle(entries: list[Entry]) -> None:
            for entry in entries:
                handled[entry.event_id] += 1
                call = entry.fields["call_control_id"].decode()
                order[(name, entry.topic, call)].append(int(entry.event_id.rsplit("/", 1)[1]))
                if entry.topic not in (*TOPICS, COMMANDS) or entry.stream != partitions.stream_for(
                    entry.topic, call, N
                ):
                    wrong.append(entry)

        return handle

    consumers = [
        consumer_for(any_redis, handler_of(name), name, batch_size=30, claim_interval_s=5)
        for name in ("c1", "c2")
    ]
    await consumers[0].ensure_groups()
    stop = asyncio.Event()
    running = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
    expected |= await publish_calls(any_redis, 3, start=3)  # while they run
    deadline = time.monotonic() + 10
    while set(handled) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*running), 5)
    assert handled == Counter(dict.fromkeys(expected, 1))
    assert not wrong, wrong[:3]  # the handler sees the topic, and the entry names its partition
    assert all(
        numbers == sorted(numbers) for numbers in order.values()
    )  # each consumer gets a call's events in order
    assert await pending_total(any_redis) == 0
    for topic in TOPICS:
        assert not await any_redis.exists(topic)
        for stream in partitions.streams_of(topic, N):
            assert [g["name"] for g in await any_redis.xinfo_groups(stream)] == [b"g"]


async def test_a_dead_consumers_entries_on_every_partition_are_claimed_once(
    any_redis: RedisClient,
) -> None:
    expected = await publish_calls(any_redis, 1)

    async def crash(entries: list[Entry]) -> None:
        raise KeyboardInterrupt  # the process dies mid-batch

    dying = consumer_for(any_redis, crash, "dying", claim_interval_s=60)
    await dying.ensure_groups()
    with pytest.raises(KeyboardInterrupt):
        await dying.run_once()
    assert await pending_total(any_redis) > 0
    handled: Counter[str] = Counter()

    async def handle(entries: list[Entry]) -> None:
        handled.update(entry.event_id for entry in entries)

    metrics = PrometheusConsumerMetrics(CollectorRegistry())
    opts = ConsumerOptions(
        group="g",
        topics=[*TOPICS, COMMANDS],
        consumer="survivor",
        block_ms=50,
        claim_interval_s=0,
        claim_idle_ms=100,
        partitions=N,
    )
    survivor = StreamConsumer(any_redis, Producer(any_redis, 10_000, N), opts, handle, metrics)
    deadline = time.monotonic() + 10
    while (
        set(handled) != expected or await pending_total(any_redis)
    ) and time.monotonic() < deadline:
        await survivor.run_once()
        await asyncio.sleep(0.02)
    await survivor.finish()
    assert handled == Counter(dict.fromkeys(expected, 1))
    assert await pending_total(any_redis) == 0
    # metrics are labelled by topic, not by partition
    claimed = {
        s.labels["topic"]
        for m in metrics.claimed.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert claimed and claimed <= {*TOPICS, COMMANDS}


async def test_a_poison_entry_goes_to_the_topics_one_dead_letter_topic(
    any_redis: RedisClient,
) -> None:
    await publish_calls(any_redis, 2)
    poison = f"{CALL_HANGUP}/v3:call-3/1"
    handled: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        if any(entry.event_id == poison for entry in entries):
            raise ValueError(f"cannot handle {poison}")
        handled.extend(entry.event_id for entry in entries)

    consumer = consumer_for(any_redis, handle, "c1", claim_idle_ms=0, max_deliveries=3)
    await consumer.ensure_groups()
    deadline = time.monotonic() + 10
    while not await any_redis.exists(dlq_topic(CALL_HANGUP)) and time.monotonic() < deadline:
        await consumer.run_once()
    await consumer.finish()
    assert (
        poison not in handled and len(handled) == len(set(handled)) == len(CALLS) * (2 * 2 + 1) - 1
    )
    [(_, fields)] = await any_redis.xrange(dlq_topic(CALL_HANGUP))
    source = partitions.stream_for(CALL_HANGUP, "v3:call-3", N)
    assert fields[b"id"] == poison.encode() and fields[b"dlq_deliveries"] == b"3"
    assert fields[b"dlq_source_topic"] == source.encode() and await any_redis.xrange(
        source, fields[b"dlq_source_entry"], fields[b"dlq_source_entry"]
    )
    assert f"cannot handle {poison}".encode() in fields[b"dlq_error"]
    assert await pending_total(any_redis) == 0
