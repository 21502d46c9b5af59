"""The indexer on a three-node Redis Cluster, fed by the real gateway: transcriptions stored and
searchable, ``transcript.completed`` published once, the live transcript streamed."""

import asyncio
from pathlib import Path

import httpx
import pytest
from redis.asyncio import RedisCluster

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import answered, hangup, initiated, transcription
from tests.transcript_indexer.test_api import _events
from tests.transcript_indexer.test_pipeline import _all_handled, _completed, signed_webhooks
from transcript_indexer.consumer import TOPICS
from transcript_indexer.live import live_topic
from voicetap_sdk.topics import TRANSCRIPT_COMPLETED, TRANSCRIPTION_COMMANDS

pytestmark = pytest.mark.slow  # the whole pipeline on a Redis Cluster


async def test_webhooks_become_a_searchable_transcript_a_completed_event_and_a_live_feed(
    redis_cluster: RedisCluster, redis_cluster_url: str, tmp_path: Path
) -> None:
    call = "v3:cluster-call"
    topics = [*TOPICS, TRANSCRIPTION_COMMANDS, TRANSCRIPT_COMPLETED, live_topic(call)]
    assert (
        len({redis_cluster.get_node_from_key(topic).name for topic in topics}) == 3
    )  # every node takes part
    settings = indexer_settings(
        redis_cluster_url,
        f"sqlite:///{tmp_path / 'transcripts.sqlite3'}",
        tmp_path,
        redis_cluster=True,
    )
    async with (
        signed_webhooks(redis_cluster_url, tmp_path, redis_cluster=True) as deliver,
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as api,
    ):
        await deliver(
            initiated(call),
            answered(call),
            transcription(call, "I want a refund for order 42.", 2.5),
        )

        async def stored() -> bool:
            return (await api.get(f"/calls/{call}")).json().get("counts", {}).get("segments") == 1

        await eventually(stored, message="first segment stored")
        async with api.stream("GET", f"/calls/{call}/transcript/live") as response:
            events = _events(response)
            assert (await asyncio.wait_for(anext(events), 5))[0] == "segment"  # the snapshot
            await deliver(
                transcription(call, "Sure, let me look that up.", 4.0, track="outbound"),
                hangup(call, 10.0),
            )
            assert [(await asyncio.wait_for(anext(events), 5))[0] for _ in range(2)] == [
                "segment",
                "completed",
            ]

        async def completed() -> bool:
            return len(await _completed(redis_cluster)) == 1

        await eventually(completed, message="transcript completed")
        text = (await api.get(f"/calls/{call}/transcript", params={"format": "txt"})).text
        assert (
            text == "inbound: I want a refund for order 42.\noutbound: Sure, let me look that up.\n"
        )
        hits = (await api.get("/search", params={"q": "refund"})).json()["items"]
        assert [h["call_control_id"] for h in hits] == [call]
        [event] = await _completed(redis_cluster)
        assert event["id"] == f"transcript.completed:{call}:1" and event["payload"]["text"] == text  # type: ignore[index]
        assert await _all_handled(redis_cluster, *TOPICS)
    live = [fields[b"type"] for _, fields in await redis_cluster.xrange(live_topic(call))]
    assert live == [b"segment", b"segment", b"completed"]


async def test_an_erasure_through_the_gateway_on_a_cluster_with_partitions(
    redis_cluster: RedisCluster, redis_cluster_url: str, tmp_path: Path
) -> None:
    """Every node and every partition holds some of the call; after the erasure none does, and a
    late transcription through the gateway is answered and not stored."""
    from tests.transcript_indexer.test_erasure import erased_events

    call = "v3:cluster-erased"
    settings = indexer_settings(
        redis_cluster_url,
        f"sqlite:///{tmp_path / 'transcripts.sqlite3'}",
        tmp_path,
        redis_cluster=True,
        topic_partitions=4,
    )
    async with (
        signed_webhooks(
            redis_cluster_url, tmp_path, redis_cluster=True, topic_partitions=4
        ) as deliver,
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        await deliver(
            initiated(call), transcription(call, "my pin is 1234", 2.5), hangup(call, 10.0)
        )

        async def stored() -> bool:
            return (await api.get(f"/calls/{call}")).json().get("counts", {}).get("segments") == 1

        await eventually(stored, message="segment stored")
        response = await api.delete(f"/calls/{call}")
        assert response.status_code == 200, response.text
        assert response.json()["removed"]["calls"] == 1
        assert response.json()["removed"]["topic_entries"] >= 3
        await deliver(transcription(call, "my pin is 1234 again", 20.0))
        await asyncio.sleep(0.5)
        assert (await api.get(f"/calls/{call}")).status_code == 404
        assert (await api.get("/search", params={"q": "pin"})).json()["items"] == []
        assert await erased_events(redis_cluster, call) == 1
        async for raw in redis_cluster.scan_iter(_type="stream"):
            name = raw.decode()
            if name.startswith(("voicetap.erasure.", "voicetap.call.")):
                continue
            for _, fields in await redis_cluster.xrange(name):
                assert fields.get(b"call_control_id") != call.encode(), name
