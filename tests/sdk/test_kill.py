"""A Subscriber process killed -9 mid-batch loses nothing: a restarted one claims what the dead one
held, and each event has one effect. SIGTERM stops it once its handlers returned and were acked."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.sdk.test_subscriber import publish_transcriptions
from tests.transcript_indexer.harness import eventually
from voicetap_sdk import topics

PROCESS = Path(__file__).with_name("consumer_process.py")
COUNT = 150


def start(redis_url: str, consumer: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(PROCESS), redis_url, consumer])


async def test_a_consumer_killed_mid_batch_and_restarted_loses_nothing(
    redis: Redis, redis_url: str
) -> None:
    await publish_transcriptions(redis, COUNT)
    first = start(redis_url, "first")
    try:

        async def some_handled() -> bool:
            return int(await redis.xlen("acme.handled")) >= 30

        await eventually(some_handled, timeout=30, message="the first consumer handled some")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    held = (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"]
    assert held > 0, "killed mid-batch: entries read, not acknowledged"
    assert await redis.xlen("acme.handled") < COUNT

    second = start(redis_url, "second")
    try:

        async def all_handled() -> bool:
            pending = (await redis.xpending(topics.CALL_TRANSCRIPTION, "g"))["pending"]
            return int(await redis.xlen("acme.handled")) == COUNT and pending == 0

        await eventually(all_handled, timeout=60, message="every entry handled and acknowledged")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 10) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    ids = [fields[b"id"] for _, fields in await redis.xrange("acme.handled")]
    assert sorted(ids) == sorted(f"ev-{n}".encode() for n in range(COUNT)), "each event once"
