"""Redis going away: the gateway answers 503 quickly (Telnyx retries), then recovers by itself."""

import asyncio
import os
import signal
import time

import httpx
import pytest
from redis.asyncio import Redis

from telnyx_simulator.signing import WebhookSigner
from tests.conftest import RedisServer
from tests.webhook_gateway.conftest import make_event, signed_post

PATH = "/webhooks/telnyx"


@pytest.fixture
def restartable(redis_server: RedisServer) -> RedisServer:
    if not redis_server.restartable:
        pytest.skip("REDIS_URL points at a server this test cannot stop")
    return redis_server


async def test_redis_stopped_then_restarted(
    restartable: RedisServer, gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    before = make_event("call.initiated", "before-outage")
    assert (await gateway.post(PATH, **signed_post(signer, before))).status_code == 200

    restartable.stop()
    try:
        during = make_event("call.answered", "during-outage")
        started = time.monotonic()
        refused = await gateway.post(PATH, **signed_post(signer, during))
        assert refused.status_code == 503
        assert time.monotonic() - started < 1.6, "Telnyx gives up after 2 s: the 503 must come well inside that"
        ready = await gateway.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {"redis": False}
    finally:
        restartable.start()

    # Telnyx retries the refused delivery; the gateway recovers without a restart.
    retried = await gateway.post(PATH, **signed_post(signer, during))
    assert retried.status_code == 200 and retried.json()["status"] == "stored"
    assert (await gateway.get("/readyz")).status_code == 200
    client = Redis.from_url(restartable.url)
    try:
        assert [f[b"id"] for _, f in await client.xrange("telnyx.call.initiated")] == [b"before-outage"]
        assert [f[b"id"] for _, f in await client.xrange("telnyx.call.answered")] == [b"during-outage"]
    finally:
        await client.aclose()


async def test_redis_hung_answers_503_inside_telnyx_timeout(
    restartable: RedisServer, gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    pid = restartable.embedded.pid()  # type: ignore[union-attr]
    assert pid is not None
    body = make_event("call.hangup", "while-hung")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        responses = await asyncio.gather(*(gateway.post(PATH, **signed_post(signer, body)) for _ in range(5)))
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
