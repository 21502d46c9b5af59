"""The indexer pipeline with TOPIC_PARTITIONS=4 (gateway and indexer alike), on a single server and
on the three-node cluster: signed webhooks of several calls, out of order and re-delivered, become
their transcripts; each call's ``transcript.completed`` is published once, on its partition; every
partition of every topic is read and acknowledged by the group."""

from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import RedisCluster

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import answered, hangup, initiated, transcription
from tests.transcript_indexer.test_pipeline import _all_handled, signed_webhooks
from transcript_indexer.consumer import TOPICS
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.topics import TRANSCRIPT_COMPLETED

pytestmark = pytest.mark.slow  # the whole pipeline, gateway to indexer

N = 4
CALLS = [f"v3:partitioned-{i}" for i in range(6)]


async def _completed(any_redis: RedisClient) -> dict[str, tuple[str, dict[str, object]]]:
    """call -> (stream, event) of every completed transcript, read from every partition."""
    found: dict[str, tuple[str, dict[str, object]]] = {}
    for stream in streams_of(TRANSCRIPT_COMPLETED, N):
        for _, fields in await any_redis.xrange(stream):
            event = orjson.loads(fields[b"event"])
            assert event["payload"]["call_control_id"] not in found, "published once"
            found[event["payload"]["call_control_id"]] = (stream, event)
    return found


async def test_webhooks_of_several_calls_become_their_transcripts_over_partitions(
    any_redis: RedisClient, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cluster = {"redis_cluster": True} if isinstance(any_redis, RedisCluster) else {}
    url = (
        request.getfixturevalue("redis_cluster_url")
        if cluster
        else request.getfixturevalue("redis_url")
    )
    said = {
        call: [f"call {i} asks for a refund", f"agent {i} says fine"]
        for i, call in enumerate(CALLS)
    }
    async with signed_webhooks(url, tmp_path, topic_partitions=N, **cluster) as deliver:
        for call, (caller, agent) in said.items():
            first, second = (
                transcription(call, caller, 2.0),
                transcription(call, agent, 3.0, track="outbound"),
            )
            # Telnyx does not order webhooks, and re-delivers some.
            await deliver(hangup(call, 9.0), second, answered(call), initiated(call), first, second)
    assert not any([await any_redis.exists(topic) for topic in TOPICS])  # only partitions
    settings = indexer_settings(
        url,
        f"sqlite:///{tmp_path / 'transcripts.sqlite3'}",
        tmp_path,
        topic_partitions=N,
        **cluster,
    )
    async with (
        running_indexer(settings) as api_url,
        httpx.AsyncClient(base_url=api_url, timeout=10) as api,
    ):

        async def all_completed() -> bool:
            return set(await _completed(any_redis)) == set(CALLS)

        await eventually(all_completed, message="every call's transcript completed")
        for call, (caller, agent) in said.items():
            text = (await api.get(f"/calls/{call}/transcript", params={"format": "txt"})).text
            assert text == f"inbound: {caller}\noutbound: {agent}\n"
        hits = (await api.get("/search", params={"q": "refund", "limit": 50})).json()["items"]
        assert sorted(h["call_control_id"] for h in hits) == sorted(CALLS)
        streams = [stream for topic in TOPICS for stream in streams_of(topic, N)]
        assert await _all_handled(any_redis, *streams)
    for call, (stream, event) in (await _completed(any_redis)).items():
        assert (
            stream == stream_for(TRANSCRIPT_COMPLETED, call, N)
            and event["id"] == f"transcript.completed:{call}:1"
        )
    assert not await any_redis.exists(TRANSCRIPT_COMPLETED)
