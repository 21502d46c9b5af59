"""The indexer as a whole, against real Redis and a real database: webhooks in, transcripts out."""

from pathlib import Path

import httpx
import orjson
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import (
    answered,
    hangup,
    initiated,
    publish,
    transcription,
)
from voicetap_common import codec
from voicetap_common.topics import CALL_TRANSCRIPTION, dlq_topic
from voicetap_common.transcript_events import TRANSCRIPT_COMPLETED
from webhook_gateway.app import create_app as create_gateway
from webhook_gateway.settings import GatewaySettings


async def _completed(redis: Redis) -> list[dict[str, object]]:
    return [orjson.loads(fields[b"event"]) for _, fields in await redis.xrange(TRANSCRIPT_COMPLETED)]


async def test_signed_webhooks_become_a_searchable_transcript(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    signer = WebhookSigner.generate()
    gateway = create_gateway(GatewaySettings(redis_url=redis_url, telnyx_public_key=signer.public_key, voicetap_data_dir=tmp_path))
    call = "v3:e2e-call"
    interim = transcription(call, "I want a ref", 2.0, final=False)
    final = transcription(call, "I want a refund for order 42.", 2.5)
    agent = transcription(call, "Sure, let me look that up.", 4.0, track="outbound")
    late = transcription(call, "Thanks, bye!", 9.9)  # arrives after the hang-up
    # Telnyx does not order webhooks: answered before initiated, a final before its interim, and re-deliveries.
    deliveries = [answered(call), initiated(call), final, interim, agent, final, hangup(call, 10.0), late, interim]
    async with serve(gateway) as gateway_url, httpx.AsyncClient(base_url=gateway_url) as webhooks:
        for event in deliveries:
            body = codec.dumps(event)
            assert (await webhooks.post("/webhooks/telnyx", content=body, headers=signer.sign(body))).status_code == 200
    settings = indexer_settings(redis_url, database_url, tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:
        async def completed() -> bool:
            return len(await _completed(redis)) == 1

        await eventually(completed, message="transcript completed")
        text = (await api.get(f"/calls/{call}/transcript", params={"format": "txt"})).text
        assert text == (
            "inbound: I want a refund for order 42.\noutbound: Sure, let me look that up.\ninbound: Thanks, bye!\n"
        )
        hits = (await api.get("/search", params={"q": "refund"})).json()["items"]
        assert [(h["call_control_id"], h["snippet"]) for h in hits] == [(call, "I want a <mark>refund</mark> for order 42.")]
        details = (await api.get(f"/calls/{call}")).json()
        assert details["state"] == "hangup" and details["direction"] == "incoming"
        assert details["counts"] == {"segments": 3, "segments_inbound": 2, "segments_outbound": 1, "partials": 0}
        event = (await _completed(redis))[0]
        assert event["event_type"] == TRANSCRIPT_COMPLETED
        payload = event["payload"]
        assert isinstance(payload, dict) and payload["text"] == text and len(payload["segments"]) == 3


async def test_duplicates_past_the_gateway_are_stored_once(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    calls = [f"dup-{n}" for n in range(3)]
    events = [transcription(c, f"segment {i} of {c}", float(i)) for c in calls for i in range(20)]
    await publish(redis, *events[::-1], *events[::2])  # reversed, then half of them again
    settings = indexer_settings(redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:
        async def all_acknowledged() -> bool:
            return (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))["pending"] == 0 and (
                await api.get(f"/calls/{calls[-1]}")
            ).status_code == 200

        await eventually(all_acknowledged, message="all entries acknowledged")
        for call in calls:
            assert (await api.get(f"/calls/{call}")).json()["counts"]["segments"] == 20
        segments = (await api.get(f"/calls/{calls[0]}/transcript")).json()["segments"]
        assert [s["text"] for s in segments] == [f"segment {i} of dup-0" for i in range(20)]


async def test_a_poison_message_is_dead_lettered_while_the_rest_flows(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    good = [transcription("p1", f"good {i}", float(i)) for i in range(10)]
    await publish(redis, *good[:5])
    await redis.xadd(CALL_TRANSCRIPTION, {"id": "bad-json", "type": "call.transcription", "event": b"{not json"})
    broken = transcription("p1", "x", 1.0)
    del broken["data"]["payload"]["transcription_data"]  # type: ignore[index]
    await redis.xadd(CALL_TRANSCRIPTION, {"id": "no-data", "type": "call.transcription", "event": codec.dumps(broken)})
    await publish(redis, *good[5:])
    settings = indexer_settings(redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:
        async def dead_lettered() -> bool:
            return await redis.xlen(dlq_topic(CALL_TRANSCRIPTION)) == 2

        await eventually(dead_lettered, message="two dead letters")
        letters = {f[b"id"]: f for _, f in await redis.xrange(dlq_topic(CALL_TRANSCRIPTION))}
        assert set(letters) == {b"bad-json", b"no-data"}
        assert b"not a valid webhook body" in letters[b"bad-json"][b"dlq_error"]
        assert (await api.get("/calls/p1")).json()["counts"]["segments"] == 10
        assert (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))["pending"] == 0


async def test_completed_is_published_once_by_several_indexers(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    first = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="one", indexer_settle_seconds=0.2)
    second = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="two", indexer_settle_seconds=0.2)
    calls = [f"done-{n}" for n in range(20)]
    async with running_indexer(first), running_indexer(second):
        for call in calls:
            await publish(redis, initiated(call), transcription(call, "hello", 2.0), hangup(call, 5.0))

        async def all_completed() -> bool:
            return len(await _completed(redis)) >= len(calls)

        await eventually(all_completed, message="every transcript completed")
        await publish(redis, *(hangup(call, 5.0) for call in calls[:3]))  # a re-delivered hang-up changes nothing
        import asyncio

        await asyncio.sleep(1.0)  # several settle times and sweeps of both processes
        published = [e["payload"]["call_control_id"] for e in await _completed(redis)]  # type: ignore[index]
        assert sorted(published) == sorted(calls)
