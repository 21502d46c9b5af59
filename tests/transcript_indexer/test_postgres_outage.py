"""PostgreSQL unavailable mid-run: batches wait and retry, nothing is acknowledged unstored, nothing lost.

The machine's PostgreSQL is shared, so instead of restarting it the test makes its own throwaway
database unavailable: new connections are refused (``ALLOW_CONNECTIONS false``) and the indexer's
open ones are terminated (``pg_terminate_backend``), which is what a restart looks like to a client.
"""

import asyncio
from pathlib import Path

import httpx
import psycopg
from redis.asyncio import Redis

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import publish, transcription
from voicetap_common.topics import CALL_TRANSCRIPTION


def _set_available(admin_url: str, database: str, available: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(available).lower()}')
        if not available:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM segments").fetchone()
        return int(row[0]) if row else 0


async def test_postgres_outage_mid_run_loses_nothing(
    redis: Redis, redis_url: str, postgres_url: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    from tests.transcript_indexer.conftest import _empty_postgres

    _empty_postgres(postgres_url)
    database = postgres_url.rpartition("/")[2]
    events = [transcription(f"pg-{c}", f"words {i}", float(i)) for c in range(10) for i in range(100)]
    settings = indexer_settings(redis_url, postgres_url, tmp_path, indexer_batch_size=50)
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url, timeout=10) as api:
        await publish(redis, *events[:500])

        async def first_half() -> bool:
            return await asyncio.to_thread(_count, postgres_url) == 500

        await eventually(first_half, message="first half stored")
        _set_available(postgres_admin_url, database, False)
        try:
            await publish(redis, *events[500:])
            await asyncio.sleep(2.0)  # batches fail and retry meanwhile
            assert (await api.get("/readyz")).json()["checks"]["database"] is False
            assert (await api.get("/calls/pg-1")).status_code == 503
            assert (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))["pending"] > 0  # held, not acked
        finally:
            _set_available(postgres_admin_url, database, True)

        async def everything() -> bool:
            pending = (await redis.xpending(CALL_TRANSCRIPTION, "transcript_indexer"))["pending"]
            return pending == 0 and await asyncio.to_thread(_count, postgres_url) == len(events)

        await eventually(everything, timeout=30, message="all stored after the outage")
        assert await redis.xlen(CALL_TRANSCRIPTION + ".dlq") == 0
