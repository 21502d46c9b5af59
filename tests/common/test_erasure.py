"""The erasure's shared mechanisms on a single server and on the three-node cluster: the sweep of
every stream (partitions, dead letters, internal streams), tombstones, the parts a requester waits
for, and the wait itself naming the part that did not answer."""

import asyncio
from datetime import UTC, datetime

from redis.asyncio import Redis, RedisCluster

from voicetap_common.erasure import (
    erased_among,
    live_parts,
    participant_key,
    request_erasure,
    set_tombstones,
    sweep_topics,
    tombstone_key,
)
from voicetap_sdk import codec
from voicetap_sdk.erasure_events import ErasureProgress, ErasureRequest
from voicetap_sdk.partitions import stream_for
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import (
    CALL_ERASED,
    CALL_HANGUP,
    ERASURE_PROGRESS,
    ERASURE_REQUESTED,
    MEDIA_ANALYTICS,
    dlq_topic,
)


async def test_the_sweep_removes_the_calls_entries_from_every_stream_and_nothing_else(
    any_redis: Redis | RedisCluster,
) -> None:
    redis = any_redis
    producer = Producer(redis, 10_000, partitions=4)
    for call_id in ("gone", "kept"):
        await producer.publish(
            CALL_HANGUP, f"h-{call_id}", "call.hangup", b"{}", call_control_id=call_id
        )
        await producer.publish(
            MEDIA_ANALYTICS, f"a-{call_id}", MEDIA_ANALYTICS, b"{}", call_control_id=call_id
        )
    # a dead letter whose body never parsed, and an internal stream: found by the id in the body
    await redis.xadd(dlq_topic(CALL_HANGUP), {"id": "d", "event": b'not json "gone" gone'})
    await redis.xadd("{voicetap.ingest}:inbox:x", {"call_control_id": "gone", "event": b"{}"})
    # the erasure's own topics keep their ids
    await redis.xadd(CALL_ERASED, {"call_control_id": "gone", "event": b"{}"})

    assert await sweep_topics(redis, ["gone"]) == 4
    assert await redis.xlen(dlq_topic(CALL_HANGUP)) == 0
    assert await redis.xlen(CALL_ERASED) == 1
    left = [
        fields
        for stream in (stream_for(CALL_HANGUP, "kept", 4), stream_for(MEDIA_ANALYTICS, "kept", 4))
        for _, fields in await redis.xrange(stream)
    ]
    assert [f[b"call_control_id"] for f in left] == [b"kept", b"kept"]
    assert await sweep_topics(redis, ["gone"]) == 0


async def test_tombstones_and_participants(any_redis: Redis | RedisCluster) -> None:
    redis = any_redis
    await set_tombstones(redis, ["a", "b"], 60)
    assert await erased_among(redis, ["a", "b", "c"]) == {"a", "b"}
    assert 0 < await redis.ttl(tombstone_key("a")) <= 60
    await redis.set(participant_key("media_ingest.erasure:one"), b"1", ex=60)
    await redis.set(participant_key("media_ingest.erasure:two"), b"1", ex=60)
    assert await live_parts(redis) == ["media_ingest.erasure:one", "media_ingest.erasure:two"]


async def test_the_requester_sums_the_parts_and_names_the_missing_one(redis: Redis) -> None:
    await redis.set(participant_key("media_ingest.erasure:one"), b"1", ex=60)
    await redis.set(participant_key("media_ingest.erasure:down"), b"1", ex=60)
    producer = Producer(redis, 10_000)
    request = ErasureRequest(id="r1", occurred_at=datetime.now(UTC), call_control_id="c1")

    # the parts answer as soon as the request is on its topic
    async def answer() -> None:
        while not await redis.xlen(ERASURE_REQUESTED):
            await asyncio.sleep(0.01)
        for part, removed in (
            ("transcript_indexer", {"calls": 1, "topic_entries": 3}),
            ("media_ingest.erasure:one", {"recordings": 1, "topic_entries": 2}),
        ):
            progress = ErasureProgress(
                id=f"r1:{part}",
                occurred_at=datetime.now(UTC),
                request_id="r1",
                part=part,
                call_control_ids=["c1"],
                removed=removed,
            )
            await redis.xadd(
                ERASURE_PROGRESS, {"event": codec.dumps(progress.model_dump(mode="json"))}
            )

    answering = asyncio.create_task(answer())
    outcome = await request_erasure(
        redis, producer, request, tombstone_seconds=60, timeout_seconds=1.5
    )
    await answering
    assert outcome.removed == {"calls": 1, "topic_entries": 5, "recordings": 1}
    assert outcome.call_control_ids == ["c1"]
    assert outcome.missing == ["media_ingest.erasure:down"]
    assert await redis.exists(tombstone_key("c1"))
