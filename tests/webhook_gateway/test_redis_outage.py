"""Redis going away: the gateway answers 503 quickly (Telnyx retries), then recovers by itself.

The Redis here is the test's own embedded server, whatever the session's is (REDIS_URL or a
container cannot be stopped and started by a test), so these tests always run.
"""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from voicetap_cli.embedded_redis import EmbeddedRedis
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings

pytestmark = pytest.mark.slow  # a Redis server stopped, hung and started again

PATH = "/webhooks/telnyx"


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis(restartable: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(restartable.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def gateway(
    restartable: EmbeddedRedis, gateway_settings: Callable[..., GatewaySettings]
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve(build_app(gateway_settings(redis_url=restartable.url))) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=5) as client,
    ):
        yield client


async def test_redis_stopped_then_restarted(
    restartable: EmbeddedRedis, gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    before = make_event("call.initiated", "before-outage")
    assert (await gateway.post(PATH, **signed_post(signer, before))).status_code == 200

    restartable.stop()
    try:
        during = make_event("call.answered", "during-outage")
        started = time.monotonic()
        refused = await gateway.post(PATH, **signed_post(signer, during))
        assert refused.status_code == 503
        assert time.monotonic() - started < 1.6, (
            "Telnyx gives up after 2 s: the 503 must come well inside that"
        )
        ready = await gateway.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {"redis": False}
    finally:
        restartable.start()

    # Telnyx retries the refused delivery; the gateway recovers without a restart.
    retried = await gateway.post(PATH, **signed_post(signer, during))
    assert retried.status_code == 200 and retried.json()["status"] == "stored"
    assert (await gateway.get("/readyz")).status_code == 200
    assert [f[b"id"] for _, f in await redis.xrange("telnyx.call.initiated")] == [b"before-outage"]
    assert [f[b"id"] for _, f in await redis.xrange("telnyx.call.answered")] == [b"during-outage"]


async def test_redis_hung_answers_503_inside_telnyx_timeout(
    restartable: EmbeddedRedis, gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    pid = restartable.pid()
    assert pid is not None
    body = make_event("call.hangup", "while-hung")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(gateway.post(PATH, **signed_post(signer, body)) for _ in range(5))
        )
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert {r.status_code for r in responses} == {503}
    assert elapsed < 1.9
    # The delivery Telnyx retries is stored once, whether or not the hung attempt reached Redis.
    for _ in range(20):
        retried = await gateway.post(PATH, **signed_post(signer, body))
        if retried.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert retried.status_code == 200
    assert await redis.xlen("telnyx.call.hangup") == 1
