"""Topics trimmed by age: what is older than TOPIC_MAX_AGE_SECONDS goes, everything younger stays,
streams outside voicetap's names are never touched."""

import asyncio
import time
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from webhook_gateway.main import build_app
from webhook_gateway.retention import trim_older_than
from webhook_gateway.settings import GatewaySettings

HOUR_MS = 3_600_000


async def _stream_at(redis: Redis, key: str, *ms: int) -> None:
    for n, stamp in enumerate(ms):
        await redis.xadd(key, {"n": str(n)}, id=f"{stamp}-{n}")


async def test_entries_older_than_the_age_are_dropped_from_every_topic(redis: Redis) -> None:
    now_ms = int(time.time() * 1000)
    old, young = now_ms - 3 * HOUR_MS, now_ms - HOUR_MS // 2
    await _stream_at(redis, "telnyx.call.answered", old, old + 1, young)
    await _stream_at(redis, "voicetap.recording.completed", old, young, young + 1)
    await _stream_at(redis, "telnyx.call.hangup.dlq", old)  # dead letters are bounded too
    await _stream_at(redis, "someone.elses.stream", old)  # not voicetap's: left alone
    await redis.set("voicetap.not-a-stream", "x")  # a plain key with a topic-like name is skipped

    trimmed = await trim_older_than(redis, max_age_seconds=3600)

    assert trimmed == {
        "telnyx.call.answered": 2,
        "voicetap.recording.completed": 1,
        "telnyx.call.hangup.dlq": 1,
    }
    assert [e[1][b"n"] for e in await redis.xrange("telnyx.call.answered")] == [b"2"]
    assert [e[1][b"n"] for e in await redis.xrange("voicetap.recording.completed")] == [b"1", b"2"]
    assert (
        await redis.xlen("telnyx.call.hangup.dlq") == 0
        and await redis.xlen("someone.elses.stream") == 1
    )
    assert await redis.get("voicetap.not-a-stream") == b"x"
    assert await trim_older_than(redis, max_age_seconds=3600) == {}  # nothing left to trim


async def test_the_gateway_sweeps_when_an_age_is_set(
    redis: Redis, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    now_ms = int(time.time() * 1000)
    await _stream_at(redis, "telnyx.call.initiated", now_ms - 2 * HOUR_MS, now_ms)
    counted = 'voicetap_gateway_topic_entries_trimmed_total{topic="telnyx.call.initiated"} 1.0'
    async with (
        serve(build_app(gateway_settings(topic_max_age_seconds=3600))) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        for _ in range(100):  # the first sweep runs as the gateway starts
            if counted in (await client.get("/metrics")).text:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no sweep counted within 5 s")
    assert await redis.xlen("telnyx.call.initiated") == 1


async def test_without_an_age_nothing_is_trimmed(
    redis: Redis, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    now_ms = int(time.time() * 1000)
    await _stream_at(redis, "telnyx.call.initiated", now_ms - 1000 * HOUR_MS)
    settings = gateway_settings()
    assert settings.topic_max_age_seconds == 0
    async with (
        serve(build_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
    assert await redis.xlen("telnyx.call.initiated") == 1
