"""An erasure interrupted by kill -9 of the indexer, half-way (rows deleted, topics not yet swept),
is finished by the next indexer process: it claims the pending request and redoes what is left.
The waiting `voicetap erase` sees it through; the end state is that of an erasure never
interrupted."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.transcript_indexer.indexer_events import hangup, initiated, publish, transcription
from tests.transcript_indexer.test_erasure import erased_events, mentions
from voicetap_cli.embedded_redis import free_port
from voicetap_sdk.topics import ERASURE_PROGRESS, ERASURE_REQUESTED

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
JUNK_ENTRIES = 400_000  # other calls' entries: the sweep of every topic takes a while


@asynccontextmanager
async def indexer_process(
    redis_url: str, tmp_path: Path, name: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(tmp_path),
        "INDEXER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "INDEXER_PORT": str(port),
        "INDEXER_CONSUMER_NAME": name,
        "INDEXER_BLOCK_MS": "100",
        "INDEXER_CLAIM_IDLE_MS": "1000",
        "INDEXER_CLAIM_INTERVAL_SECONDS": "0.2",
        "LOG_FORMAT": "console",
    }
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "indexer", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            for _ in range(400):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the indexer did not become ready")
        yield process, url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def fill_junk(redis: Redis) -> None:
    for start in range(0, JUNK_ENTRIES, 20_000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, start + 20_000):
                pipe.xadd(
                    "telnyx.call.junk",
                    {
                        "id": f"j{n}",
                        "type": "call.junk",
                        "event": b'{"x": 1}',
                        "call_control_id": f"other-{n}",
                    },
                )
            await pipe.execute()


@pytest.mark.slow
async def test_an_erasure_killed_half_way_is_finished_by_the_next_indexer(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    call_id = "resumed-1"
    await publish(
        redis,
        initiated(call_id),
        transcription(call_id, "the secret is in the mail", 3.0),
        hangup(call_id),
    )
    await fill_junk(redis)
    async with indexer_process(redis_url, tmp_path, "first") as (first, url):
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            for _ in range(400):
                if (await client.get(f"/calls/{call_id}")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("call not stored")
            erase = await asyncio.create_subprocess_exec(
                VOICETAP,
                "erase",
                "--call",
                call_id,
                "--timeout",
                "60",
                env={**os.environ, "REDIS_URL": redis_url, "LOG_FORMAT": "console"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            while (await client.get(f"/calls/{call_id}")).status_code != 404:
                await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    try:
        # interrupted after the rows went, during the sweep of the topics: nothing announced yet
        assert await redis.xlen(ERASURE_PROGRESS) == 0
        assert await erased_events(redis, call_id) == 0
        async with indexer_process(redis_url, tmp_path, "second"):
            out, err = await asyncio.wait_for(erase.communicate(), 60)
            assert erase.returncode == 0, err.decode()
    finally:
        if erase.returncode is None:
            erase.kill()
            await erase.wait()
    assert "  call resumed-1" in out.decode()
    assert await mentions(redis, call_id) == {}
    assert await erased_events(redis, call_id) == 1
    pending = await redis.xpending(ERASURE_REQUESTED, "transcript_indexer.erasure")
    assert pending["pending"] == 0
