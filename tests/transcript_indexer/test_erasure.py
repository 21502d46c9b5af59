"""Erasure through the indexer, end to end on a real Redis and each back end: `DELETE /calls/{id}`
and `voicetap erase` (a real subprocess) publish the request, the indexer's erasure group executes
it, and afterwards nothing about the call is left in the database, the search, the live stream or
any topic (dead letters included); a late transcription stays gone."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import httpx
import pytest
from redis.asyncio import Redis, RedisCluster

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import (
    hangup,
    initiated,
    publish,
    transcription,
)
from transcript_indexer.live import live_topic
from transcript_indexer.settings import IndexerSettings
from voicetap_common.erasure import tombstone_key
from voicetap_sdk import codec
from voicetap_sdk.streams import RawEntries
from voicetap_sdk.topics import (
    CALL_ERASED,
    CALL_TRANSCRIPTION,
    ERASURE_PROGRESS,
    ERASURE_REQUESTED,
    dlq_topic,
)

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
CALLER = "+15551110000"


async def voicetap_erase(redis_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        VOICETAP,
        "erase",
        *args,
        env={**os.environ, "REDIS_URL": redis_url, "LOG_FORMAT": "console"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def mentions(redis: Redis | RedisCluster, call_id: str) -> dict[str, int]:
    """Entries about ``call_id`` in every stream but the erasure's own (ids only), per stream."""
    found: dict[str, int] = {}
    async for raw in redis.scan_iter(_type="stream"):
        name = raw.decode()
        if name in (ERASURE_REQUESTED, ERASURE_PROGRESS, CALL_ERASED):
            continue
        entries = cast(RawEntries, await redis.xrange(name))
        hits = sum(
            1
            for _, fields in entries
            if fields.get(b"call_control_id") == call_id.encode()
            or call_id.encode() in fields.get(b"event", b"")
        )
        if hits:
            found[name] = hits
    return found


async def erased_events(redis: Redis | RedisCluster, call_id: str) -> int:
    entries = cast(RawEntries, await redis.xrange(CALL_ERASED))
    return sum(1 for _, fields in entries if fields.get(b"call_control_id") == call_id.encode())


async def store_call(redis: Redis, client: httpx.AsyncClient, call_id: str, caller: str) -> None:
    await publish(
        redis,
        initiated(call_id, 0.0, caller=caller),
        transcription(call_id, f"my card number for {call_id} is secret", 3.0),
        transcription(call_id, "thanks for waiting", 6.0, track="outbound"),
        hangup(call_id, 60.0),
    )

    async def stored() -> bool:
        response = await client.get(f"/calls/{call_id}")
        return response.status_code == 200 and response.json()["counts"]["segments"] == 2

    await eventually(stored, message=f"{call_id} stored")


@pytest.fixture
def settings(redis_url: str, database_url: str, tmp_path: Path) -> IndexerSettings:
    return indexer_settings(redis_url, database_url, tmp_path, indexer_erasure_timeout_seconds=10.0)


async def test_a_finished_call_is_erased_everywhere_once_and_stays_gone(
    redis: Redis, settings: IndexerSettings
) -> None:
    async with (
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=15) as client,
    ):
        await store_call(redis, client, "gone-1", CALLER)
        await store_call(redis, client, "kept-1", "+15552220000")
        # a dead letter about the call, as the consumer writes one (the original entry's fields)
        await redis.xadd(
            dlq_topic(CALL_TRANSCRIPTION),
            {"id": "x", "type": "call.transcription", "event": b"{}", "call_control_id": "gone-1"},
        )
        assert await redis.exists(live_topic("gone-1"))
        assert (await mentions(redis, "gone-1")).keys() >= {
            CALL_TRANSCRIPTION,
            dlq_topic(CALL_TRANSCRIPTION),
        }

        response = await client.delete("/calls/gone-1")
        assert response.status_code == 200, response.text
        removed = response.json()["removed"]
        assert removed["calls"] == 1
        assert removed["transcript_segments"] == 2
        assert removed["live_streams"] == 1
        assert removed["topic_entries"] >= 5  # 4 webhooks and the dead letter, at least

        assert (await client.get("/calls/gone-1")).status_code == 404
        hits = (await client.get("/search", params={"q": "secret"})).json()["items"]
        assert {hit["call_control_id"] for hit in hits} == {"kept-1"}
        assert await mentions(redis, "gone-1") == {}
        assert not await redis.exists(live_topic("gone-1"))
        assert await redis.exists(tombstone_key("gone-1"))
        assert await erased_events(redis, "gone-1") == 1
        assert (await client.get("/calls/kept-1")).status_code == 200

        # twice, and an unknown call: the same end state, nothing counted, no second event
        again = await client.delete("/calls/gone-1")
        assert again.status_code == 200
        assert set(again.json()["removed"].values()) == {0}
        unknown = await client.delete("/calls/never-was")
        assert unknown.status_code == 200
        assert set(unknown.json()["removed"].values()) == {0}
        assert await erased_events(redis, "gone-1") == 1

        # Telnyx delivers late: a transcription about the erased call is read, acknowledged, not stored
        await publish(redis, transcription("gone-1", "a late secret arrives", 90.0))
        await publish(redis, transcription("kept-1", "a late marker arrives", 90.0))

        async def marker_stored() -> bool:
            hits = (await client.get("/search", params={"q": "marker"})).json()["items"]
            return bool(hits)

        await eventually(marker_stored, message="the batch after the late event handled")
        assert (await client.get("/search", params={"q": "late secret"})).json()["items"] == []
        assert (await client.get("/calls/gone-1")).status_code == 404
        assert not await redis.exists(live_topic("gone-1"))


async def test_erase_by_number_from_the_command_line(
    redis: Redis, redis_url: str, settings: IndexerSettings
) -> None:
    async with (
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=15) as client,
    ):
        for call_id in ("num-a", "num-b"):
            await store_call(redis, client, call_id, CALLER)
        await store_call(redis, client, "num-other", "+15553330000")

        code, out, err = await voicetap_erase(redis_url, "--number", CALLER, "--timeout", "20")
        assert code == 0, err
        counted = [line.split() for line in out.splitlines()[1:]]
        lines = {words[0]: words[1] for words in counted if words[0] != "call"}
        assert lines["calls"] == "2"
        assert lines["transcript_segments"] == "4"
        assert "  call num-a" in out and "  call num-b" in out
        for call_id in ("num-a", "num-b"):
            assert (await client.get(f"/calls/{call_id}")).status_code == 404
            assert await mentions(redis, call_id) == {}
            assert await erased_events(redis, call_id) == 1
        assert (await client.get("/calls/num-other")).status_code == 200

        code, out, _ = await voicetap_erase(redis_url, "--number", CALLER)
        assert code == 0
        assert out.splitlines()[0].endswith(": 0 call(s)")


async def test_the_command_names_the_part_that_did_not_answer(redis: Redis, redis_url: str) -> None:
    code, out, err = await voicetap_erase(redis_url, "--call", "nobody-home", "--timeout", "1")
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no answer from transcript_indexer within 1 s" in err
    # the tombstone is set at once: nothing about the call is stored from now on
    assert await redis.exists(tombstone_key("nobody-home"))
    requests = cast(RawEntries, await redis.xrange(ERASURE_REQUESTED))
    assert [codec.loads(f[b"event"])["call_control_id"] for _, f in requests] == ["nobody-home"]


async def test_a_number_that_is_not_e164_is_one_line(redis_url: str) -> None:
    code, _, err = await voicetap_erase(redis_url, "--number", "555-1234")
    assert code == 1
    assert err.strip() == (
        "voicetap erase: --number '555-1234' is not an E.164 number; write it like +15551230000"
    )


async def test_delete_answers_504_naming_the_instance_that_did_not_answer(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    from voicetap_common.erasure import participant_key

    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        indexer_erasure_timeout_seconds=1.0,
    )
    # an ingest instance that says it takes part, and never answers
    await redis.set(participant_key("media_ingest.erasure:silent"), b"1", ex=60)
    async with (
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response = await client.delete("/calls/any-call")
    assert response.status_code == 504
    body = response.json()
    assert body["missing"] == ["media_ingest.erasure:silent"]
    assert body["answered"] == ["transcript_indexer"]
    assert "media_ingest.erasure:silent" in body["error"]
