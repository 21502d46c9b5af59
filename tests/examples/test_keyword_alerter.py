"""The keyword alerter example against a real Redis: alerts once per matching final, never twice.

The example is not a workspace member (it shows a consumer that depends on nothing but `redis`):
its folder is put on sys.path here.
"""

import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from voicetap_sdk.partitions import partition_of, stream_for, streams_of
from voicetap_sdk.streams import Producer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keyword_alerter"
sys.path.insert(0, str(EXAMPLE))
import keyword_alerter  # noqa: E402
from keyword_alerter import (  # noqa: E402
    ALERT_TOPIC,
    SOURCE_TOPIC,
    KeywordAlerter,
    find_phrases,
    phrase_pattern,
)


@pytest.fixture
def client(redis: AsyncRedis, redis_url: str) -> Iterator[Redis]:
    """A plain (blocking) client, as the example uses, on the database the `redis` fixture emptied."""
    with Redis.from_url(redis_url) as sync_client:
        yield sync_client


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


def add(client: Redis, body: dict[str, Any]) -> str:
    """Append an entry as the gateway writes it: plain fields, the body as JSON."""
    fields = {"id": body["data"]["id"], "type": "call.transcription", "event": json.dumps(body)}
    return client.xadd(SOURCE_TOPIC, fields).decode()


def alerts(client: Redis) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(ALERT_TOPIC)
    ]


def pending(client: Redis, group: str = "keyword_alerter", stream: str = SOURCE_TOPIC) -> int:
    return client.xpending(stream, group)["pending"]


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


def test_alerts_once_for_matching_finals_only(client: Redis) -> None:
    add(client, transcription("ev-1", "Please pay with a Gift Card today"))
    add(
        client, transcription("ev-2", "I will send a wire transfer", is_final=False)
    )  # interim: revised later
    add(client, transcription("ev-3", "The weather is fine"))
    add(
        client,
        transcription(
            "ev-4", "Read me your social security number and the gift card code", is_final=None
        ),
    )
    client.xadd(SOURCE_TOPIC, {"id": "ev-5", "type": "call.transcription", "event": b"not json"})

    alerter = KeywordAlerter(client, consumer="c1")
    assert alerter.process_available() == 2

    raised = alerts(client)
    assert [a["id"] for a in raised] == ["ev-1:keyword", "ev-4:keyword"]
    assert raised[0]["phrases"] == "gift card" and raised[0]["call_control_id"] == "v3:call-1"
    assert raised[1]["phrases"] == "social security number,gift card"
    assert (
        raised[0]["type"] == keyword_alerter.ALERT_TYPE
        and raised[0]["source_topic"] == SOURCE_TOPIC
    )
    assert json.loads(raised[1]["event"])["phrases"] == ["social security number", "gift card"]
    assert pending(client) == 0, "every entry, matching or not, is acknowledged"
    assert alerter.process_available() == 0


def test_redelivery_and_duplicates_do_not_double(client: Redis) -> None:
    entry = add(client, transcription("ev-1", "send a wire transfer now"))
    alerter = KeywordAlerter(client, consumer="c1")
    alerter.ensure_group()

    # A consumer that dies after publishing but before acknowledging: the entry is redelivered.
    fields = client.xrange(SOURCE_TOPIC)[0][1]
    assert alerter.publish(alerter.alert_for(entry, fields) or {})
    assert alerter.process_available() == 0
    assert len(alerts(client)) == 1 and pending(client) == 0

    # The same event arriving again in a new entry (a producer's retry) raises nothing new.
    add(client, transcription("ev-1", "send a wire transfer now"))
    assert alerter.process_available() == 0
    assert len(alerts(client)) == 1 and pending(client) == 0


def test_entries_of_a_dead_consumer_are_claimed_and_alerted_once(client: Redis) -> None:
    add(client, transcription("ev-1", "buy a gift card"))
    add(client, transcription("ev-2", "nothing to see"))
    KeywordAlerter(client).ensure_group()
    client.xreadgroup(
        "keyword_alerter", "dead", {SOURCE_TOPIC: ">"}, count=10
    )  # received, never acked
    assert pending(client) == 2

    survivor = KeywordAlerter(client, consumer="alive", claim_idle_ms=0)
    assert survivor.process_available() == 1
    assert pending(client) == 0
    assert survivor.process_available() == 0
    assert [a["id"] for a in alerts(client)] == ["ev-1:keyword"]


def test_a_group_from_now_skips_history_and_groups_are_independent(client: Redis) -> None:
    add(client, transcription("old", "wire transfer"))
    from_now = KeywordAlerter(client, group="from_now", start="now", consumer="n")
    assert from_now.process_available() == 0
    add(client, transcription("new", "wire transfer"))
    assert from_now.process_available() == 1
    assert [a["source_id"] for a in alerts(client)] == ["new"]

    # A second group from the beginning sees both entries; `new` already raised its alert.
    from_start = KeywordAlerter(client, group="audit", consumer="a")
    assert from_start.process_available() == 1
    assert sorted(a["source_id"] for a in alerts(client)) == ["new", "old"]


def test_the_example_needs_nothing_but_a_redis_client() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert [dependency.split(">")[0].split("=")[0] for dependency in project["dependencies"]] == [
        "redis"
    ]
    assert project["scripts"]["keyword-alerter"] == "keyword_alerter:main"


# With TOPIC_PARTITIONS=4: calls 0..7 fall on every partition, two calls each.
PARTITIONS = 4
CALLS = [f"v3:call-{n}" for n in range(8)]


def partition_streams() -> list[str]:
    return streams_of(SOURCE_TOPIC, PARTITIONS)


def test_the_naming_rule_is_voicetaps() -> None:
    assert {partition_of(call, PARTITIONS) for call in CALLS} == set(range(PARTITIONS))
    for partitions in (1, 2, 4, 7):
        assert keyword_alerter.topic_streams(SOURCE_TOPIC, partitions) == streams_of(
            SOURCE_TOPIC, partitions
        )
    with pytest.raises(ValueError):
        keyword_alerter.topic_streams(SOURCE_TOPIC, 0)


async def test_partitions_alert_once_per_call_over_every_partition(
    redis: AsyncRedis, client: Redis
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
    assert not client.exists(SOURCE_TOPIC)
    assert [client.xlen(stream) for stream in partition_streams()] == [6] * PARTITIONS

    # Two copies share the group: the first reads one entry of each partition, the second the rest.
    first = KeywordAlerter(client, consumer="c1", partitions=PARTITIONS, batch_size=1)
    second = KeywordAlerter(client, consumer="c2", partitions=PARTITIONS)
    first.ensure_group()
    assert first.read_new(block_ms=None)[0] == PARTITIONS
    second.process_available()
    assert first.process_available() == 0 and second.process_available() == 0

    raised = alerts(client)
    assert sorted(a["id"] for a in raised) == sorted(f"ev-{n}-b:keyword" for n in range(len(CALLS)))
    for alert in raised:
        stream = stream_for(SOURCE_TOPIC, alert["call_control_id"], PARTITIONS)
        assert alert["source_stream"] == stream and alert["source_topic"] == SOURCE_TOPIC
        [(entry_id, fields)] = client.xrange(stream, alert["source_entry"], alert["source_entry"])
        assert fields[b"id"].decode() == alert["source_id"]
    for stream in partition_streams():
        assert pending(client, stream=stream) == 0, stream
    assert not client.exists(SOURCE_TOPIC), "the unpartitioned stream is never created"
    assert not client.keys(f"{ALERT_TOPIC}:p*"), "alerts are not partitioned"


def test_partitions_entries_of_a_dead_consumer_are_claimed_on_their_partition(
    client: Redis,
) -> None:
    for n, call in enumerate(CALLS):
        stream = stream_for(SOURCE_TOPIC, call, PARTITIONS)
        for event_id, transcript in (
            (f"ev-{n}", "send a wire transfer"),
            (f"quiet-{n}", "nothing to see"),
        ):
            body = transcription(event_id, transcript, call=call)
            client.xadd(
                stream,
                {
                    "id": event_id,
                    "type": "call.transcription",
                    "event": json.dumps(body),
                    "call_control_id": call,
                },
            )
    KeywordAlerter(client, partitions=PARTITIONS).ensure_group()
    client.xreadgroup(
        "keyword_alerter", "dead", dict.fromkeys(partition_streams(), ">"), count=10
    )  # never acked
    assert [pending(client, stream=stream) for stream in partition_streams()] == [4] * PARTITIONS

    survivor = KeywordAlerter(client, consumer="alive", claim_idle_ms=0, partitions=PARTITIONS)
    assert survivor.process_available() == len(CALLS)
    assert [pending(client, stream=stream) for stream in partition_streams()] == [0] * PARTITIONS
    assert survivor.process_available() == 0
    assert sorted(a["source_id"] for a in alerts(client)) == sorted(
        f"ev-{n}" for n in range(len(CALLS))
    )


def test_partitions_option_defaults_to_topic_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPIC_PARTITIONS", raising=False)
    assert keyword_alerter.parse_args([]).partitions == 1
    monkeypatch.setenv("TOPIC_PARTITIONS", "4")
    assert keyword_alerter.parse_args([]).partitions == 4
    assert keyword_alerter.parse_args(["--partitions", "2"]).partitions == 2
    for wrong in ("0", "-1", "four"):
        with pytest.raises(SystemExit):
            keyword_alerter.parse_args(["--partitions", wrong])


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
def test_the_default_redis_is_the_stacks(environ: dict[str, str], url: str) -> None:
    assert keyword_alerter.stack_redis_url(environ) == url
