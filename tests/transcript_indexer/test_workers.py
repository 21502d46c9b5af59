"""Indexer processes (``python -m transcript_indexer``) sharing one consumer group and one database
(each back end): crash and scale."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from tests.transcript_indexer.harness import eventually, free_port
from tests.transcript_indexer.indexer_events import publish, transcription
from voicetap_sdk.topics import CALL_TRANSCRIPTION

pytestmark = pytest.mark.slow  # several indexer processes

GROUP = "transcript_indexer"


def _spawn(
    tmp_path: Path, redis_url: str, database_url: str, name: str, port: int, batch_size: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "INDEXER_DATABASE_URL": database_url,
        "INDEXER_PORT": str(port),
        "INDEXER_CONSUMER_NAME": name,
        "INDEXER_BATCH_SIZE": str(batch_size),
        "INDEXER_BLOCK_MS": "100",
        "INDEXER_CLAIM_IDLE_MS": "1000",
        "INDEXER_CLAIM_INTERVAL_SECONDS": "0.3",
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - the child writes to it until it exits
    return subprocess.Popen(
        [sys.executable, "-m", "transcript_indexer"], env=env, cwd=tmp_path, stdout=log, stderr=log
    )


def _count(database_url: str) -> tuple[int, int]:
    """(segments, distinct event ids) as committed, read by another connection."""
    query = "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM segments"
    if not database_url.startswith("sqlite:///"):
        with psycopg.connect(database_url, autocommit=True) as pg:
            try:
                row = pg.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:  # schema not created yet
                return 0, 0
            assert row is not None
            return int(row[0]), int(row[1])
    database = Path(database_url.removeprefix("sqlite:///"))
    if not database.exists():
        return 0, 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute(query).fetchone()
        except sqlite3.OperationalError:  # schema not created yet
            return 0, 0
        return int(row[0]), int(row[1])


async def _ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def answers() -> bool:
            assert process.poll() is None, "worker exited"
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(answers, timeout=20, message="worker ready")


def _events(calls: int, per_call: int) -> list[dict[str, object]]:
    return [
        transcription(f"w-{c}", f"utterance {i} of call {c}", float(i))
        for c in range(calls)
        for i in range(per_call)
    ]


async def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    events = _events(40, 250)  # 10,000 segments
    await publish(redis, *events, *events[::10])  # and 1,000 re-deliveries
    first = _spawn(tmp_path, redis_url, database_url, "first", free_port(), batch_size=100)
    try:

        async def working() -> bool:
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            return _count(database_url)[0] > 0

        await eventually(working, timeout=20, message="first worker storing")
        first.send_signal(signal.SIGKILL)
        first.wait(5)
    finally:
        if first.poll() is None:
            first.kill()
    stored_at_kill = _count(database_url)[0]
    held = [
        entry
        for name in ("first-0", "first-1")  # the worker's two consumers (INDEXER_CONSUMERS=2)
        for entry in await redis.xpending_range(
            CALL_TRANSCRIPTION, GROUP, min="-", max="+", count=10, consumername=name
        )
    ]
    assert stored_at_kill < len(events) and held, "the kill must leave work done and work held"

    second = _spawn(tmp_path, redis_url, database_url, "second", free_port(), batch_size=500)
    try:

        async def finished() -> bool:
            assert second.poll() is None, (tmp_path / "second.log").read_text()
            pending = (await redis.xpending(CALL_TRANSCRIPTION, GROUP))["pending"]
            return pending == 0 and _count(database_url)[0] == len(events)

        await eventually(finished, timeout=60, message="second worker finishing")
        await asyncio.sleep(0.5)
        assert _count(database_url) == (len(events), len(events))
    finally:
        second.terminate()
        assert second.wait(10) == 0


async def test_three_workers_share_the_group(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(3)]
    workers = [
        _spawn(tmp_path, redis_url, database_url, f"worker{n}", port, batch_size=50)
        for n, port in enumerate(ports)
    ]
    try:
        for port, worker in zip(ports, workers, strict=True):
            await _ready(port, worker)
        events = _events(30, 100)
        for start in range(0, len(events), 150):  # a steady load rather than one pre-filled burst
            await publish(redis, *events[start : start + 150])
            await asyncio.sleep(0.02)

        async def finished() -> bool:
            return (await redis.xpending(CALL_TRANSCRIPTION, GROUP))["pending"] == 0 and _count(
                database_url
            )[0] == len(events)

        await eventually(finished, timeout=60, message="all events stored")
        handled: list[float] = []

        async def counted() -> (
            bool
        ):  # a worker counts an entry just after its XACK: allow it that instant
            handled.clear()
            async with httpx.AsyncClient() as client:
                for port in ports:
                    metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    line = next(
                        x
                        for x in metrics.splitlines()
                        if x.startswith("voicetap_consumer_entries_total{")
                        and CALL_TRANSCRIPTION in x
                    )
                    handled.append(float(line.split()[-1]))
            return sum(handled) >= len(events)

        await eventually(counted, timeout=5, message="every handled entry counted")
        assert sum(handled) == len(events) and all(h > 0 for h in handled), handled
        assert _count(database_url) == (len(events), len(events))
    finally:
        for worker in workers:
            worker.terminate()
        assert [worker.wait(10) for worker in workers] == [0, 0, 0]  # SIGTERM: a clean stop
