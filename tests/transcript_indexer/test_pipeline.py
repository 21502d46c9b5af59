"""The indexer as a whole, against real Redis and a real database (each back end): webhooks in, transcripts out."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest
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
from voicetap_sdk import codec
from voicetap_sdk.topics import (
    CALL_HANGUP,
    CALL_INITIATED,
    CALL_TRANSCRIPTION,
    TRANSCRIPT_COMPLETED,
    dlq_topic,
)
from webhook_gateway.main import build_app as create_gateway
from webhook_gateway.settings import GatewaySettings

pytestmark = pytest.mark.slow  # the whole pipeline, gateway to indexer

GROUP = "transcript_indexer"

Deliver = Callable[..., Awaitable[None]]


async def _completed(redis: Redis) -> list[dict[str, object]]:
    return [
        orjson.loads(fields[b"event"]) for _, fields in await redis.xrange(TRANSCRIPT_COMPLETED)
    ]


@contextlib.asynccontextmanager
async def signed_webhooks(
    redis_url: str, tmp_path: Path, **settings: object
) -> AsyncIterator[Deliver]:
    """The real gateway (``settings`` added to its own); yields ``deliver(*events)``, which posts
    each one signed as Telnyx does."""
    signer = WebhookSigner.generate()
    gateway = create_gateway(
        GatewaySettings(
            redis_url=redis_url,
            telnyx_public_key=signer.public_key,
            voicetap_data_dir=tmp_path,
            **settings,
        )  # type: ignore[arg-type]
    )
    async with serve(gateway) as gateway_url, httpx.AsyncClient(base_url=gateway_url) as webhooks:

        async def deliver(*events: dict[str, object]) -> None:
            for event in events:
                body = codec.dumps(event)
                assert (
                    await webhooks.post("/webhooks/telnyx", content=body, headers=signer.sign(body))
                ).status_code == 200

        yield deliver


async def _all_handled(redis: Redis, *topics: str) -> bool:
    """Every entry of ``topics`` read by the indexer's group and acknowledged."""
    for topic in topics:
        newest = await redis.xrevrange(topic, count=1)
        group = next(g for g in await redis.xinfo_groups(topic) if g["name"] == GROUP.encode())
        if group["pending"] or (newest and group["last-delivered-id"] != newest[0][0]):
            return False
    return True


async def _complete_a_marker_call(redis: Redis, call: str) -> None:
    """Hang up ``call`` and wait for its transcript: every call that was due before it is published by then
    (a sweep takes due calls in the order of their last activity), so what has not come will not come."""
    await publish(redis, initiated(call), hangup(call, 1.0))

    async def marker_completed() -> bool:
        return any(e["payload"]["call_control_id"] == call for e in await _completed(redis))  # type: ignore[index]

    await eventually(marker_completed, message=f"{call} completed")


async def test_signed_webhooks_become_a_searchable_transcript(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    call = "v3:e2e-call"
    interim = transcription(call, "I want a ref", 2.0, final=False)
    final = transcription(call, "I want a refund for order 42.", 2.5)
    agent = transcription(call, "Sure, let me look that up.", 4.0, track="outbound")
    late = transcription(call, "Thanks, bye!", 9.9)  # arrives after the hang-up
    # Telnyx does not order webhooks: answered before initiated, a final before its interim, and re-deliveries.
    async with signed_webhooks(redis_url, tmp_path) as deliver:
        await deliver(
            answered(call),
            initiated(call),
            final,
            interim,
            agent,
            final,
            hangup(call, 10.0),
            late,
            interim,
        )
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
        assert [(h["call_control_id"], h["snippet"]) for h in hits] == [
            (call, "I want a <mark>refund</mark> for order 42.")
        ]
        details = (await api.get(f"/calls/{call}")).json()
        assert details["state"] == "hangup" and details["direction"] == "incoming"
        assert details["counts"] == {
            "segments": 3,
            "segments_inbound": 2,
            "segments_outbound": 1,
            "partials": 0,
        }
        event = (await _completed(redis))[0]
        assert (
            event["event_type"] == TRANSCRIPT_COMPLETED
            and event["id"] == f"transcript.completed:{call}:1"
        )
        payload = event["payload"]
        assert (
            isinstance(payload, dict) and payload["text"] == text and len(payload["segments"]) == 3
        )
        assert payload["revision"] == 1


async def test_an_interim_result_is_shown_until_its_final_replaces_it(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    call = "v3:interim-call"
    settings = indexer_settings(redis_url, database_url, tmp_path)
    async with (
        signed_webhooks(redis_url, tmp_path) as deliver,
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):

        async def transcript() -> dict[str, list[dict[str, object]]]:
            response = await api.get(f"/calls/{call}/transcript")
            return (
                response.json() if response.status_code == 200 else {"segments": [], "partials": []}
            )

        await deliver(
            initiated(call), answered(call), transcription(call, "I want a ref", 2.0, final=False)
        )

        async def partial_shown() -> bool:
            return bool((await transcript())["partials"])

        await eventually(partial_shown, message="the interim result stored")
        shown = await transcript()
        assert shown["segments"] == []
        assert [(p["text"], p["track"]) for p in shown["partials"]] == [("I want a ref", "inbound")]
        assert (await api.get(f"/calls/{call}")).json()["counts"] == {"segments": 0, "partials": 1}

        await deliver(transcription(call, "I want a refund.", 2.5))

        async def final_shown() -> bool:
            return bool((await transcript())["segments"])

        await eventually(final_shown, message="the final stored")
        replaced = await transcript()
        assert [(s["text"], s["track"]) for s in replaced["segments"]] == [
            ("I want a refund.", "inbound")
        ]
        assert replaced["partials"] == []
        assert (await api.get(f"/calls/{call}")).json()["counts"] == {
            "segments": 1,
            "segments_inbound": 1,
            "partials": 0,
        }


async def test_a_segment_stored_after_completion_publishes_the_next_revision(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    call = "v3:late-call"
    late = transcription(call, "One more thing.", 9.0)
    settings = indexer_settings(redis_url, database_url, tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:
        await publish(
            redis, initiated(call), transcription(call, "Hello.", 2.0), hangup(call, 10.0)
        )

        async def revisions(count: int) -> bool:
            return len(await _completed(redis)) == count

        await eventually(lambda: revisions(1), message="revision 1")
        await publish(redis, late)  # Telnyx delivered it after the transcript was completed
        await eventually(lambda: revisions(2), message="revision 2")
        first, second = await _completed(redis)
        assert [(e["id"], e["payload"]["revision"]) for e in (first, second)] == [  # type: ignore[index]
            (f"transcript.completed:{call}:1", 1),
            (f"transcript.completed:{call}:2", 2),
        ]
        assert [f[b"id"] for _, f in await redis.xrange(TRANSCRIPT_COMPLETED)] == [
            e["id"].encode() for e in (first, second)
        ]  # type: ignore[union-attr]
        text = (await api.get(f"/calls/{call}/transcript", params={"format": "txt"})).text
        assert text == "inbound: Hello.\ninbound: One more thing.\n"
        assert second["payload"]["text"] == text  # type: ignore[index]
        assert [s["text"] for s in second["payload"]["segments"]] == ["Hello.", "One more thing."]  # type: ignore[index]

        # The late segment again past the gateway (a re-delivery), with the hang-up: stored once, no revision 3.
        await publish(redis, late, hangup(call, 10.0))
        await eventually(
            lambda: _all_handled(redis, CALL_TRANSCRIPTION, CALL_HANGUP),
            message="re-deliveries handled",
        )
        await _complete_a_marker_call(redis, "v3:marker-call")
        assert [
            e["id"] for e in await _completed(redis) if e["payload"]["call_control_id"] == call
        ] == [  # type: ignore[index]
            first["id"],
            second["id"],
        ]
        assert (await api.get(f"/calls/{call}")).json()["counts"]["segments"] == 2


async def test_duplicates_past_the_gateway_are_stored_once(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    calls = [f"dup-{n}" for n in range(3)]
    events = [transcription(c, f"segment {i} of {c}", float(i)) for c in calls for i in range(20)]
    await publish(redis, *events[::-1], *events[::2])  # reversed, then half of them again
    settings = indexer_settings(redis_url, database_url, tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:

        async def all_acknowledged() -> bool:
            return await _all_handled(redis, CALL_TRANSCRIPTION)

        await eventually(all_acknowledged, message="all entries acknowledged")
        for call in calls:
            assert (await api.get(f"/calls/{call}")).json()["counts"]["segments"] == 20
        segments = (await api.get(f"/calls/{calls[0]}/transcript")).json()["segments"]
        assert [s["text"] for s in segments] == [f"segment {i} of dup-0" for i in range(20)]


async def test_a_poison_message_is_dead_lettered_while_the_rest_flows(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    good = [transcription("p1", f"good {i}", float(i)) for i in range(10)]
    await publish(redis, *good[:5])
    await redis.xadd(
        CALL_TRANSCRIPTION, {"id": "bad-json", "type": "call.transcription", "event": b"{not json"}
    )
    broken = transcription("p1", "x", 1.0)
    del broken["data"]["payload"]["transcription_data"]  # type: ignore[index]
    await redis.xadd(
        CALL_TRANSCRIPTION,
        {"id": "no-data", "type": "call.transcription", "event": codec.dumps(broken)},
    )
    await publish(redis, *good[5:])
    settings = indexer_settings(redis_url, database_url, tmp_path)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as api:

        async def dead_lettered() -> (
            bool
        ):  # the entries around the two are isolated and stored one by one
            return await redis.xlen(dlq_topic(CALL_TRANSCRIPTION)) == 2 and await _all_handled(
                redis, CALL_TRANSCRIPTION
            )

        await eventually(dead_lettered, message="two dead letters, the rest handled")
        letters = {f[b"id"]: f for _, f in await redis.xrange(dlq_topic(CALL_TRANSCRIPTION))}
        assert set(letters) == {b"bad-json", b"no-data"}
        assert b"not a valid webhook body" in letters[b"bad-json"][b"dlq_error"]
        assert (await api.get("/calls/p1")).json()["counts"]["segments"] == 10


async def test_completed_is_published_once_by_several_indexers(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    first = indexer_settings(
        redis_url, database_url, tmp_path, indexer_consumer_name="one", indexer_settle_seconds=0.2
    )
    second = indexer_settings(
        redis_url, database_url, tmp_path, indexer_consumer_name="two", indexer_settle_seconds=0.2
    )
    calls = [f"done-{n}" for n in range(20)]
    async with running_indexer(first), running_indexer(second):
        for call in calls:
            await publish(
                redis, initiated(call), transcription(call, "hello", 2.0), hangup(call, 5.0)
            )

        async def all_completed() -> bool:
            return len(await _completed(redis)) >= len(calls)

        await eventually(all_completed, message="every transcript completed")
        await publish(
            redis, *(hangup(call, 5.0) for call in calls[:3])
        )  # a re-delivered hang-up changes nothing
        await eventually(
            lambda: _all_handled(redis, CALL_HANGUP, CALL_INITIATED),
            message="re-deliveries handled",
        )
        await _complete_a_marker_call(redis, "done-marker")
        published = [e["id"] for e in await _completed(redis)]
        assert sorted(published) == sorted(
            f"transcript.completed:{call}:1" for call in [*calls, "done-marker"]
        )
