"""The FastStream example against a real Redis: typed events reach its handlers, its group starts
at the beginning, a poison entry is claimed again and then dead-lettered, its AsyncAPI document
names the SDK's models."""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import Redis

from tests.sdk.events import transcription, webhook
from voicetap_sdk import codec, topics
from voicetap_sdk.streams import Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "faststream_app"))
import call_summaries  # noqa: E402


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.05)


async def publish_call(producer: Producer, call: str, words: list[str]) -> None:
    for n, text in enumerate(words):
        event_id = f"{call}-t{n}"
        body = transcription(event_id, text, call=call)
        await producer.publish(
            topics.CALL_TRANSCRIPTION, event_id, "call.transcription", body, call_control_id=call
        )
    interim = transcription(f"{call}-i", "not final", call=call, is_final=False)
    await producer.publish(
        topics.CALL_TRANSCRIPTION, f"{call}-i", "call.transcription", interim, call_control_id=call
    )


async def hang_up(producer: Producer, call: str) -> None:
    body = webhook(
        f"{call}-h", "call.hangup", {"call_control_id": call, "hangup_cause": "normal_clearing"}
    )
    await producer.publish(
        topics.CALL_HANGUP, f"{call}-h", "call.hangup", body, call_control_id=call
    )


async def summaries(redis: Redis) -> dict[str, dict[str, object]]:
    found = {}
    for _, fields in await redis.xrange(call_summaries.SUMMARIES):
        summary = codec.loads(fields[b"event"])
        found[summary["call_control_id"]] = summary
    return found


async def test_typed_events_reach_the_handlers_from_the_beginning(
    redis: Redis, redis_url: str
) -> None:
    producer = Producer(redis, 10_000, 2)
    await publish_call(producer, "v3:call-a", ["hello there", "my card is blocked"])  # before start
    app = call_summaries.create_app(redis_url, partitions=2, claim_idle_ms=500)
    async with app:
        # Written before the app's first start, yet read: the group was created at 0.
        await asyncio.sleep(0.3)
        await hang_up(producer, "v3:call-a")

        async def summed_up() -> bool:
            return "v3:call-a" in await summaries(redis)

        await eventually(summed_up, "the summary of call a")
        await hang_up(producer, "v3:call-a")  # a redelivered hang-up: no second summary
        await asyncio.sleep(0.5)
    found = await summaries(redis)
    assert found["v3:call-a"] == {
        "call_control_id": "v3:call-a",
        "hangup_cause": "normal_clearing",
        "finals": 2,
        "words": 6,
        "transcript": "hello there my card is blocked",
    }
    assert await redis.xlen(call_summaries.SUMMARIES) == 1


async def test_a_poison_entry_is_claimed_again_then_dead_lettered(
    redis: Redis, redis_url: str
) -> None:
    await redis.xadd(topics.CALL_HANGUP, {"id": "bad", "type": "call.hangup", "event": b"not json"})
    producer = Producer(redis, 10_000, 1)
    await publish_call(producer, "v3:call-b", ["one two three"])
    app = call_summaries.create_app(redis_url, partitions=1, claim_idle_ms=200, max_deliveries=3)
    async with app:
        await asyncio.sleep(0.3)
        await hang_up(producer, "v3:call-b")

        async def dead_lettered() -> bool:
            return bool(await redis.xlen(topics.dlq_topic(topics.CALL_HANGUP)))

        await eventually(dead_lettered, "the poison entry in the dead-letter topic")
        await eventually(lambda: _has(redis, "v3:call-b"), "the rest flows: call b's summary")
    [(_, fields)] = await redis.xrange(topics.dlq_topic(topics.CALL_HANGUP))
    assert fields[b"id"] == b"bad" and int(fields[b"dlq_deliveries"]) == 3
    assert (await redis.xpending(topics.CALL_HANGUP, call_summaries.GROUP))["pending"] == 0


async def _has(redis: Redis, call: str) -> bool:
    return call in await summaries(redis)


def test_its_asyncapi_document_names_the_sdk_models(redis_url: str) -> None:
    app = call_summaries.create_app(redis_url, partitions=1)
    document = json.loads(app.schema.to_specification().to_json())
    assert document["asyncapi"].startswith("3.")
    payloads = {
        message["payload"]["$ref"].rsplit("/", 1)[1]
        for message in document["components"]["messages"].values()
    }
    assert payloads == {"CallTranscriptionEvent", "CallHangupEvent"}
    transcript = document["components"]["schemas"]["CallTranscriptionPayload"]
    assert "transcription_data" in transcript["properties"]
    assert sorted(channel["address"] for channel in document["channels"].values()) == [
        topics.CALL_HANGUP,
        topics.CALL_TRANSCRIPTION,
    ]
