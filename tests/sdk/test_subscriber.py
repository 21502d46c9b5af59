"""The SDK's Subscriber against a real Redis (and the three-node cluster): typed events, where a new
group starts, dead letters after exactly max_deliveries, publish_once under redelivery,
partitions, a graceful stop."""

import asyncio
from collections import Counter

import pytest
from redis.asyncio import Redis, RedisCluster

from tests.sdk.events import transcription, webhook
from voicetap_sdk import Entry, Subscriber, codec, topics
from voicetap_sdk.consumer import RetryLater
from voicetap_sdk.events import CallTranscriptionEvent, GenericEvent
from voicetap_sdk.media_events import MediaMark
from voicetap_sdk.partitions import streams_of
from voicetap_sdk.streams import Producer

OUT = "acme.alerts"


async def publish_transcriptions(
    redis: Redis | RedisCluster, count: int, *, partitions: int = 1, prefix: str = "ev"
) -> None:
    producer = Producer(redis, 10_000, partitions)
    for n in range(count):
        call = f"v3:call-{n % 8}"
        await producer.publish(
            topics.CALL_TRANSCRIPTION,
            f"{prefix}-{n}",
            "call.transcription",
            transcription(f"{prefix}-{n}", f"words {n}", call=call),
            call_control_id=call,
        )


def subscriber(url: str, **options: object) -> Subscriber:
    values: dict[str, object] = {
        "group": "g",
        "claim_idle_ms": 0,
        "claim_interval_s": 0,
        "partitions": 1,
        **options,
    }
    return Subscriber(url, **values)  # type: ignore[arg-type]


async def test_handlers_receive_the_typed_event_of_their_topic(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, 1)
    producer = Producer(redis, 10_000)
    unknown = webhook("ev-b", "call.bridged", {"call_control_id": "v3:c", "new_field": [1, 2]})
    await producer.publish("telnyx.call.bridged", "ev-b", "call.bridged", unknown)
    mark = MediaMark(id="mark-1", call_control_id="v3:c", stream_id="s", name="greeting-done")
    await producer.publish_model(topics.MEDIA_MARK, mark.id, topics.MEDIA_MARK, mark)
    await producer.publish("acme.custom", "x-1", "acme.thing", b"{}", call_control_id="v3:c")

    received: list[object] = []
    sub = subscriber(redis_url)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        received.append(event)

    @sub.on("telnyx.call.bridged")
    async def on_bridged(event: GenericEvent) -> None:
        received.append(event)

    @sub.on(topics.MEDIA_MARK)
    async def on_mark(event: MediaMark) -> None:
        received.append(event)

    @sub.on("acme.custom", raw=True)
    async def on_custom(entry: Entry) -> None:
        received.append(entry)

    try:
        assert await sub.process_available() == 4
    finally:
        await sub.close()
    by_type = {type(event): event for event in received}
    text = by_type[CallTranscriptionEvent]
    assert isinstance(text, CallTranscriptionEvent)
    assert text.id == "ev-0" and text.payload.transcription_data.transcript == "words 0"
    bridged = by_type[GenericEvent]
    assert isinstance(bridged, GenericEvent) and bridged.event_type == "call.bridged"
    assert bridged.payload == {"call_control_id": "v3:c", "new_field": [1, 2]}, "every field kept"
    assert by_type[MediaMark] == mark
    raw = by_type[Entry]
    assert isinstance(raw, Entry) and raw.fields["call_control_id"] == b"v3:c"


def test_a_topic_without_a_model_must_ask_for_the_raw_entry() -> None:
    sub = Subscriber("redis://127.0.0.1:1/0", group="g", partitions=1)
    with pytest.raises(ValueError, match="raw=True"):
        sub.on("acme.custom")
    with pytest.raises(ValueError, match="'beginning' or 'now'"):
        Subscriber("redis://127.0.0.1:1/0", group="g", start="later")  # type: ignore[arg-type]


async def test_start_now_sees_only_new_entries_and_beginning_all(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, 3, prefix="old")
    seen: dict[str, list[str]] = {"now": [], "beginning": []}
    subs = []
    for start in ("now", "beginning"):
        sub = subscriber(redis_url, group=f"from_{start}", start=start)

        @sub.on(topics.CALL_TRANSCRIPTION)
        async def on_text(event: CallTranscriptionEvent, start: str = start) -> None:
            seen[start].append(event.id)

        subs.append(sub)
    try:
        assert await subs[0].process_available() == 0  # the group is created at "$"
        await publish_transcriptions(redis, 2, prefix="new")
        for sub in subs:
            await sub.process_available()
    finally:
        for sub in subs:
            await sub.close()
    assert seen["now"] == ["new-0", "new-1"]
    assert seen["beginning"] == ["old-0", "old-1", "old-2", "new-0", "new-1"]


@pytest.mark.parametrize("max_deliveries", [2, 4])
async def test_a_poison_entry_is_dead_lettered_after_exactly_max_deliveries_while_the_rest_flows(
    redis: Redis, redis_url: str, max_deliveries: int
) -> None:
    await publish_transcriptions(redis, 5)
    calls: Counter[str] = Counter()
    sub = subscriber(redis_url, max_deliveries=max_deliveries)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        calls[event.id] += 1
        if event.id == "ev-2":
            raise RuntimeError("cannot score this call")

    try:
        await sub.process_available()
    finally:
        await sub.close()
    assert calls == {"ev-0": 1, "ev-1": 1, "ev-2": max_deliveries, "ev-3": 1, "ev-4": 1}
    [(_, fields)] = await redis.xrange(topics.dlq_topic(topics.CALL_TRANSCRIPTION))
    assert fields[b"id"] == b"ev-2"
    assert fields[b"dlq_deliveries"] == str(max_deliveries).encode()
    assert b"cannot score this call" in fields[b"dlq_error"]
    assert (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"] == 0


async def test_an_entry_that_is_not_its_topics_model_is_dead_lettered_at_once(
    redis: Redis, redis_url: str
) -> None:
    await redis.xadd(topics.CALL_TRANSCRIPTION, {"id": "bad", "type": "x", "event": b"not json"})
    await publish_transcriptions(redis, 2)
    handled: list[str] = []
    sub = subscriber(redis_url)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        handled.append(event.id)

    try:
        await sub.process_available()
    finally:
        await sub.close()
    assert handled == ["ev-0", "ev-1"]
    [(_, fields)] = await redis.xrange(topics.dlq_topic(topics.CALL_TRANSCRIPTION))
    assert fields[b"id"] == b"bad" and fields[b"dlq_deliveries"] == b"1"


async def test_publish_once_under_redelivery_produces_one_effect(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, 3)
    crashes = {"ev-1"}  # the effect is stored, then the handler fails before its entry is acked
    sub = subscriber(redis_url)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        call = event.payload.call_control_id or ""
        await sub.publish_once(OUT, key=event.id, fields={"call": call, "type": "acme.alert"})
        if event.id in crashes:
            crashes.discard(event.id)
            raise RuntimeError("crashed after the effect")

    try:
        await sub.process_available()
        assert await sub.publish_once(OUT, key="ev-0", fields={"call": "again"}) is None
    finally:
        await sub.close()
    alerts = await redis.xrange(OUT)
    assert sorted(fields[b"id"] for _, fields in alerts) == [b"ev-0", b"ev-1", b"ev-2"]
    assert all(fields[b"type"] == b"acme.alert" for _, fields in alerts)
    assert (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"] == 0


PARTITIONS = 4


async def test_partitions_and_a_cluster_are_read_without_the_handler_knowing(
    any_redis: Redis | RedisCluster, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(
        "redis_url" if isinstance(any_redis, Redis) else "redis_cluster_url"
    )
    await publish_transcriptions(any_redis, 16, partitions=PARTITIONS)
    streams = streams_of(topics.CALL_TRANSCRIPTION, PARTITIONS)
    assert all([await any_redis.xlen(stream) for stream in streams])
    seen: list[str] = []
    sub = subscriber(url, partitions=PARTITIONS)  # cluster or not: asked of the server

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        seen.append(event.id)
        await sub.publish_once(OUT, key=event.id, fields={"call": "x"})

    try:
        assert await sub.process_available() == 16
    finally:
        await sub.close()
    assert sorted(seen) == sorted(f"ev-{n}" for n in range(16))
    for stream in streams:
        assert (await any_redis.xpending(stream, "g"))["pending"] == 0, stream
    assert await any_redis.xlen(OUT) == 16, "a topic of the user's own is never partitioned"


async def test_a_stop_waits_for_the_handler_in_flight_and_its_acknowledgement(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, 1)
    started, finished = asyncio.Event(), asyncio.Event()
    sub = subscriber(redis_url, block_ms=100)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    stop = asyncio.Event()
    serving = asyncio.create_task(sub.serve(stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    await asyncio.wait_for(serving, 10)
    assert finished.is_set()
    assert (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"] == 0


async def test_the_event_json_is_what_the_entry_holds(redis: Redis, redis_url: str) -> None:
    """A typed event keeps Telnyx's own field names and values (the envelope's ``data``)."""
    await publish_transcriptions(redis, 1)
    got: list[CallTranscriptionEvent] = []
    sub = subscriber(redis_url)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        got.append(event)

    try:
        await sub.process_available()
    finally:
        await sub.close()
    [(_, fields)] = await redis.xrange(topics.CALL_TRANSCRIPTION)
    assert (
        got[0].model_dump(mode="json", by_alias=True, exclude_none=True)["payload"]
        == (codec.loads(fields[b"event"])["data"]["payload"])
    )


async def test_retry_later_retries_in_place_without_calling_a_returned_handler_again(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, 4)
    calls: Counter[str] = Counter()
    database_down = {"ev-2": 2}  # twice: the database is down, the entry is fine
    sub = subscriber(redis_url, max_deliveries=2)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        calls[event.id] += 1
        if database_down.get(event.id):
            database_down[event.id] -= 1
            raise RetryLater("database down")

    try:
        assert await sub.process_available() == 4
    finally:
        await sub.close()
    assert calls == {"ev-0": 1, "ev-1": 1, "ev-2": 3, "ev-3": 1}
    assert not await redis.exists(topics.dlq_topic(topics.CALL_TRANSCRIPTION)), "never counted"
    assert (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"] == 0
