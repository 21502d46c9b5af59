"""An indexer whose database is down at start: it serves probes (not ready, naming the database),
answers the API with 503, and still stops at once when told to."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from telnyx_simulator.serve import serve
from tests.transcript_indexer.harness import eventually, indexer_settings
from tests.transcript_indexer.own_postgres import own_postgres
from transcript_indexer.main import build_app
from voicetap_cli.embedded_redis import free_port


async def test_a_database_down_at_start_is_waited_for_without_holding_up_a_stop(
    redis_url: str, tmp_path: Path
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/none"  # a port nothing listens on
    settings = indexer_settings(redis_url, nobody, tmp_path)
    async with serve(build_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        await asyncio.sleep(0.5)  # a few attempts to open it meanwhile
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": False, "redis": True}
        assert (await client.get("/calls/any")).status_code == 503
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3.0


@pytest.mark.slow  # a PostgreSQL server of its own, stopped and started
async def test_the_indexer_becomes_ready_once_the_database_comes_up(
    redis_url: str, tmp_path: Path
) -> None:
    with own_postgres() as server:
        await asyncio.to_thread(server.stop)
        settings = indexer_settings(redis_url, server.url, tmp_path)
        async with serve(build_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            await asyncio.sleep(2.5)  # at least one bounded attempt failed meanwhile
            assert (await client.get("/readyz")).json()["checks"]["database"] is False
            await asyncio.to_thread(server.start)

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, timeout=30, message="ready once the database is up")
            assert (await client.get("/calls/any")).status_code == 404
