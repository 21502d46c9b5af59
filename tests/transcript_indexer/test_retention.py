"""Retention with two indexer instances on one database and one Redis: every call that ended before
`VOICETAP_RETENTION_DAYS` is erased once (one request, one `voicetap.call.expired`), a recent one
is kept."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
from redis.asyncio import Redis

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import T0, hangup, initiated, publish, transcription
from voicetap_sdk import codec
from voicetap_sdk.streams import RawEntries
from voicetap_sdk.topics import CALL_EXPIRED, ERASURE_REQUESTED

OLD_CALLS = [f"old-{n}" for n in range(6)]


async def test_two_instances_expire_each_old_call_once(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    retention_days = 7
    assert (datetime.now(UTC) - T0).days > retention_days  # the events' fixed times are old
    for call_id in OLD_CALLS:
        await publish(
            redis,
            initiated(call_id),
            transcription(call_id, f"old words of {call_id}", 3.0),
            hangup(call_id, 60.0),
        )
    now = datetime.now(UTC)
    recent = {
        "data": {
            **hangup("recent")["data"],  # type: ignore[dict-item]
            "occurred_at": now.isoformat().replace("+00:00", "Z"),
        },
        "meta": {"attempt": 1},
    }
    await publish(redis, transcription("recent", "recent words", 3.0), recent)
    settings = [
        indexer_settings(
            redis_url,
            database_url,
            tmp_path / name,
            voicetap_retention_days=retention_days,
            indexer_retention_interval_seconds=0.2,
            indexer_retention_batch_size=2,  # several batches
            indexer_consumer_name=name,
        )
        for name in ("one", "two")
    ]
    async with (
        running_indexer(settings[0]) as url,
        running_indexer(settings[1]) as url_two,
        httpx.AsyncClient(base_url=url, timeout=5) as client,
    ):

        async def all_expired() -> bool:
            return await redis.xlen(CALL_EXPIRED) >= len(OLD_CALLS)

        await eventually(all_expired, timeout=20, message="every old call expired")
        await asyncio.sleep(1.0)  # several more sweeps of both instances
        expired = cast(RawEntries, await redis.xrange(CALL_EXPIRED))
        assert sorted(f[b"call_control_id"].decode() for _, f in expired) == OLD_CALLS
        requests = cast(RawEntries, await redis.xrange(ERASURE_REQUESTED))
        assert sorted(codec.loads(f[b"event"])["call_control_id"] for _, f in requests) == (
            OLD_CALLS
        )
        assert {codec.loads(f[b"event"])["reason"] for _, f in requests} == {"expired"}
        for call_id in OLD_CALLS:
            assert (await client.get(f"/calls/{call_id}")).status_code == 404
        assert (await client.get("/search", params={"q": "old"})).json()["items"] == []
        assert (await client.get("/calls/recent")).status_code == 200
        requested = [
            await expiries_requested(base, client) for base in (url, url_two)
        ]  # by each instance: the two together asked once per call
        assert sum(requested) == len(OLD_CALLS), requested


async def expiries_requested(base: str, client: httpx.AsyncClient) -> int:
    metrics = (await client.get(f"{base}/metrics")).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("voicetap_indexer_expiries_requested_total ")
    )
    return int(float(line.split()[1]))
