"""The keyword alerter example against a real Redis: alerts once per matching final, never twice.

The example is not a workspace member (it is a user's project on the SDK): its folder is put on
sys.path here.
"""

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from voicetap_sdk import Subscriber
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.streams import Producer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keyword_alerter"
sys.path.insert(0, str(EXAMPLE))
import keyword_alerter  # noqa: E402
from keyword_alerter import ALERT_TOPIC, find_phrases, phrase_pattern  # noqa: E402

SOURCE_TOPIC = "telnyx.call.transcription"


def alerter(redis_url: str, **options: Any) -> Subscriber:
    """The example's handler on a Subscriber, as its `main` builds it."""
    values: dict[str, Any] = {"group": "keyword_alerter", "partitions": 1, **options}
    sub = Subscriber(redis_url, **values)
    keyword_alerter.watch(sub)
    return sub


async def process(sub: Subscriber) -> int:
    """Everything there is now, then the connection closed; returns entries handled."""
    try:
        return await sub.process_available()
    finally:
        await sub.close()


def transcription(
    event_id: str, transcript: str, *, is_final: bool | None = True, call: str = "v3:call-1"
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "transcript": transcript,
        "confidence": 0.9,
        "transcription_track": "inbound",
    }
    if is_final is not None:
        data["is_final"] = is_final
    return {
        "data": {
            "record_type": "event",
            "event_type": "call.transcription",
            "id": event_id,
            "occurred_at": "2025-06-01T12:00:00Z",
            "payload": {"call_control_id": call, "transcription_data": data},
        },
        "meta": {"attempt": 1},
    }


async def add(redis: Redis, body: dict[str, Any]) -> str:
    """Append an entry as the gateway writes it: plain fields, the body as JSON."""
    fields = {"id": body["data"]["id"], "type": "call.transcription", "event": json.dumps(body)}
    return (await redis.xadd(SOURCE_TOPIC, fields)).decode()


async def alerts(redis: Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await redis.xrange(ALERT_TOPIC)
    ]


async def pending(redis: Redis, group: str = "keyword_alerter", stream: str = SOURCE_TOPIC) -> int:
    return int((await redis.xpending(stream, group))["pending"])


def test_phrases_match_whole_words_in_any_case_and_spacing() -> None:
    pattern = phrase_pattern(["gift card", "Wire Transfer", "social security number"])
    assert find_phrases(
        pattern, "Buy a GIFT   card, then a wire transfer; then another gift card."
    ) == ["gift card", "wire transfer"]
    assert find_phrases(pattern, "What is your Social Security Number?") == [
        "social security number"
    ]
    for harmless in ("giftcard", "a gift cardigan", "rewire transfers", "the weather is fine", ""):
        assert find_phrases(pattern, harmless) == [], harmless
    with pytest.raises(ValueError):
        phrase_pattern(["  "])


async def test_alerts_once_for_matching_finals_only(redis: Redis, redis_url: str) -> None:
    await add(redis, transcription("ev-1", "Please pay with a Gift Card today"))
    await add(redis, transcription("ev-2", "I will send a wire transfer", is_final=False))
    await add(redis, transcription("ev-3", "The weather is fine"))
    await add(
        redis,
        transcription(
            "ev-4", "Read me your social security number and the gift card code", is_final=None
        ),
    )
    await redis.xadd(SOURCE_TOPIC, {"id": "ev-5", "type": "call.transcription", "event": b"x"})

    assert await process(alerter(redis_url, consumer="c1")) == 5  # ev-5: dead-lettered at once

    raised = await alerts(redis)
    assert [a["id"] for a in raised] == ["ev-1:keyword", "ev-4:keyword"]
    assert raised[0]["phrases"] == "gift card" and raised[0]["call_control_id"] == "v3:call-1"
    assert raised[1]["phrases"] == "social security number,gift card"
    assert (
        raised[0]["type"] == keyword_alerter.ALERT_TYPE
        and raised[0]["source_topic"] == SOURCE_TOPIC
        and raised[0]["track"] == "inbound"
        and raised[0]["occurred_at"].startswith("2025-06-01T12:00:00")
    )
    assert "source_stream" not in raised[0], "no partitions: the entry is on the topic itself"
    assert json.loads(raised[1]["event"])["phrases"] == ["social security number", "gift card"]
    assert await pending(redis) == 0, "every entry, matching or not, is acknowledged"
    [(_, dead)] = await redis.xrange(SOURCE_TOPIC + ".dlq")
    assert dead[b"id"] == b"ev-5"
    assert await process(alerter(redis_url, consumer="c1")) == 0


async def test_redelivery_and_duplicates_do_not_double(redis: Redis, redis_url: str) -> None:
    await add(redis, transcription("ev-1", "send a wire transfer now"))
    # A consumer that dies after publishing but before acknowledging: the entry is redelivered.
    await redis.xgroup_create(SOURCE_TOPIC, "keyword_alerter", id="0")
    await redis.xreadgroup("keyword_alerter", "dead", {SOURCE_TOPIC: ">"})
    assert await process(alerter(redis_url, consumer="c1", claim_idle_ms=0)) == 1
    assert await process(alerter(redis_url, consumer="c2", claim_idle_ms=0)) == 0
    # Redis forgets nothing: the same entry delivered again to another group raises nothing new.
    assert await process(alerter(redis_url, group="second", consumer="c3")) == 1
    assert len(await alerts(redis)) == 1 and await pending(redis) == 0

    # The same event arriving again in a new entry (a producer's retry) raises nothing new.
    await add(redis, transcription("ev-1", "send a wire transfer now"))
    assert await process(alerter(redis_url, consumer="c1")) == 1
    assert len(await alerts(redis)) == 1 and await pending(redis) == 0


async def test_entries_of_a_dead_consumer_are_claimed_and_alerted_once(
    redis: Redis, redis_url: str
) -> None:
    await add(redis, transcription("ev-1", "buy a gift card"))
    await add(redis, transcription("ev-2", "nothing to see"))
    await redis.xgroup_create(SOURCE_TOPIC, "keyword_alerter", id="0")
    await redis.xreadgroup("keyword_alerter", "dead", {SOURCE_TOPIC: ">"}, count=10)  # never acked
    assert await pending(redis) == 2

    assert await process(alerter(redis_url, consumer="alive", claim_idle_ms=60_000)) == 0
    assert await pending(redis) == 2, "not idle long enough: not claimed"
    assert await process(alerter(redis_url, consumer="alive", claim_idle_ms=0)) == 2
    assert await pending(redis) == 0
    assert await process(alerter(redis_url, consumer="alive", claim_idle_ms=0)) == 0
    assert [a["id"] for a in await alerts(redis)] == ["ev-1:keyword"]


async def test_a_group_from_now_skips_history_and_groups_are_independent(
    redis: Redis, redis_url: str
) -> None:
    await add(redis, transcription("old", "wire transfer"))
    assert await process(alerter(redis_url, group="from_now", start="now", consumer="n")) == 0
    await add(redis, transcription("new", "wire transfer"))
    assert await process(alerter(redis_url, group="from_now", start="now", consumer="n")) == 1
    assert [a["source_id"] for a in await alerts(redis)] == ["new"]

    # A second group from the beginning sees both entries; `new` already raised its alert.
    assert await process(alerter(redis_url, group="audit", consumer="a")) == 2
    assert sorted(a["source_id"] for a in await alerts(redis)) == ["new", "old"]


def test_the_example_needs_nothing_but_the_sdk() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["voicetap-sdk"]
    assert project["scripts"]["keyword-alerter"] == "keyword_alerter:main"


# With TOPIC_PARTITIONS=4: calls 0..7 fall on every partition, two calls each.
PARTITIONS = 4
CALLS = [f"v3:call-{n}" for n in range(8)]


def partition_streams() -> list[str]:
    return streams_of(SOURCE_TOPIC, PARTITIONS)


async def test_partitions_alert_once_per_call_over_every_partition(
    redis: Redis, redis_url: str
) -> None:
    producer = Producer(redis, 10_000, PARTITIONS)  # as the gateway writes with TOPIC_PARTITIONS=4
    for n, call in enumerate(CALLS):
        for event_id, transcript, is_final in (
            (f"ev-{n}-a", "I will buy a gift card", False),  # interim: no alert
            (f"ev-{n}-b", "I will buy a gift card", True),
            (f"ev-{n}-c", "the weather is fine", True),
        ):
            body = json.dumps(
                transcription(event_id, transcript, is_final=is_final, call=call)
            ).encode()
            await producer.publish(
                SOURCE_TOPIC, event_id, "call.transcription", body, call_control_id=call
            )
    assert not await redis.exists(SOURCE_TOPIC)
    assert [await redis.xlen(stream) for stream in partition_streams()] == [6] * PARTITIONS

    # Two copies share the group, side by side: each entry is handled by one of them.
    first = alerter(redis_url, consumer="c1", partitions=PARTITIONS, batch_size=1)
    second = alerter(redis_url, consumer="c2", partitions=PARTITIONS, batch_size=1)
    counts = await asyncio.gather(process(first), process(second))
    assert sum(counts) == 3 * len(CALLS) and all(counts), counts

    raised = await alerts(redis)
    assert sorted(a["id"] for a in raised) == sorted(f"ev-{n}-b:keyword" for n in range(len(CALLS)))
    for alert in raised:
        stream = stream_for(SOURCE_TOPIC, alert["call_control_id"], PARTITIONS)
        assert alert["source_stream"] == stream and alert["source_topic"] == SOURCE_TOPIC
        [(_, fields)] = await redis.xrange(stream, alert["source_entry"], alert["source_entry"])
        assert fields[b"id"].decode() == alert["source_id"]
    for stream in partition_streams():
        assert await pending(redis, stream=stream) == 0, stream
    assert not await redis.exists(SOURCE_TOPIC), "the unpartitioned stream is never created"
    assert not await redis.keys(f"{ALERT_TOPIC}:p*"), "alerts are not partitioned"


async def test_partitions_entries_of_a_dead_consumer_are_claimed_on_their_partition(
    redis: Redis, redis_url: str
) -> None:
    for n, call in enumerate(CALLS):
        stream = stream_for(SOURCE_TOPIC, call, PARTITIONS)
        for event_id, transcript in (
            (f"ev-{n}", "send a wire transfer"),
            (f"quiet-{n}", "nothing to see"),
        ):
            body = transcription(event_id, transcript, call=call)
            fields = {"id": event_id, "type": "call.transcription", "event": json.dumps(body)}
            await redis.xadd(stream, {**fields, "call_control_id": call})
    for stream in partition_streams():
        await redis.xgroup_create(stream, "keyword_alerter", id="0")
    await redis.xreadgroup(
        "keyword_alerter", "dead", dict.fromkeys(partition_streams(), ">"), count=10
    )  # never acked
    assert [await pending(redis, stream=s) for s in partition_streams()] == [4] * PARTITIONS

    survivor = alerter(redis_url, consumer="alive", claim_idle_ms=0, partitions=PARTITIONS)
    assert await process(survivor) == 2 * len(CALLS)
    assert [await pending(redis, stream=s) for s in partition_streams()] == [0] * PARTITIONS
    assert sorted(a["source_id"] for a in await alerts(redis)) == sorted(
        f"ev-{n}" for n in range(len(CALLS))
    )


async def test_partitions_default_to_topic_partitions(
    monkeypatch: pytest.MonkeyPatch, redis: Redis, redis_url: str
) -> None:
    monkeypatch.setenv("TOPIC_PARTITIONS", "4")
    assert keyword_alerter.parse_args([]).partitions is None  # the Subscriber reads the variable
    assert keyword_alerter.parse_args(["--partitions", "2"]).partitions == 2
    for wrong in ("0", "-1", "four"):
        with pytest.raises(SystemExit):
            keyword_alerter.parse_args(["--partitions", wrong])
    body = json.dumps(transcription("ev-p", "gift card", call=CALLS[1])).encode()
    await Producer(redis, 10_000, PARTITIONS).publish(
        SOURCE_TOPIC, "ev-p", "call.transcription", body, call_control_id=CALLS[1]
    )
    sub = Subscriber(redis_url, group="keyword_alerter")
    keyword_alerter.watch(sub)
    assert await process(sub) == 1
    assert [a["source_stream"] for a in await alerts(redis)] == [
        stream_for(SOURCE_TOPIC, CALLS[1], PARTITIONS)
    ]


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "redis://127.0.0.1:6399/0"),  # the embedded Redis of `voicetap up`, not 6379
        ({"VOICETAP_EMBEDDED_REDIS_PORT": "6411"}, "redis://127.0.0.1:6411/0"),
        (
            {"REDIS_URL": "redis://redis:6379/2", "VOICETAP_EMBEDDED_REDIS_PORT": "6411"},
            "redis://redis:6379/2",
        ),
    ],
)
def test_the_default_redis_is_the_stacks(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], url: str
) -> None:
    for name in ("REDIS_URL", "VOICETAP_EMBEDDED_REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert keyword_alerter.parse_args([]).redis_url == url
