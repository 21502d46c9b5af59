"""PostgreSQL restarted mid-run: batches wait and retry, nothing is acknowledged unstored, nothing
lost. The server is the test's own (own_postgres.py), really stopped and started again."""

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import publish, transcription
from tests.transcript_indexer.own_postgres import own_postgres
from voicetap_sdk.topics import CALL_TRANSCRIPTION

pytestmark = pytest.mark.slow  # a PostgreSQL server stopped and started again


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM segments").fetchone()
        return int(row[0]) if row else 0


async def test_postgres_restart_mid_run_loses_nothing(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    events = [
        transcription(f"pg-{c}", f"words {i}", float(i)) for c in range(10) for i in range(100)
    ]
    with own_postgres() as server:
        settings = indexer_settings(redis_url, server.url, tmp_path, indexer_batch_size=50)
        async with (
            running_indexer(settings) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as api,
        ):
            await publish(redis, *events[:500])

            async def first_half() -> bool:
                return await asyncio.to_thread(_count, server.url) == 500

            await eventually(first_half, message="first half stored")
            await asyncio.to_thread(server.stop)
            try:
                await publish(redis, *events[500:])

                async def held() -> bool:  # batches fail and wait; nothing is acknowledged unstored
                    return (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))[
                        "pending"
                    ] > 0

                await eventually(held, message="entries held while the database is down")
                await asyncio.sleep(1.0)  # a few failed attempts meanwhile
                assert (await api.get("/readyz")).json()["checks"]["database"] is False
                assert (await api.get("/calls/pg-1")).status_code == 503
                assert await held()
            finally:
                await asyncio.to_thread(server.start)

            async def everything() -> bool:
                pending = (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))[
                    "pending"
                ]
                return pending == 0 and await asyncio.to_thread(_count, server.url) == len(events)

            await eventually(everything, timeout=30, message="all stored after the restart")
            assert (await api.get("/readyz")).json()["checks"]["database"] is True
            assert (await api.get("/calls/pg-1")).status_code == 200
        assert await redis.xlen(CALL_TRANSCRIPTION + ".dlq") == 0
