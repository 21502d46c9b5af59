"""The gateway with TOPIC_PARTITIONS=4, on a single server and on the three-node cluster: each
webhook stored once on its call's partition (a concurrent burst of re-deliveries included), an
event without a call on partition 0, and nothing on the unpartitioned topic."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import RedisCluster

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.topics import dedupe_key, telnyx_topic
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings

PATH = "/webhooks/telnyx"
N = 4
EVENT_TYPES = ["call.answered", "call.hangup", "call.transcription", "call.bridged"]
CALLS = [f"v3:call-{i}" for i in range(12)]


@pytest.fixture
async def gateway(
    any_redis: RedisClient,
    request: pytest.FixtureRequest,
    gateway_settings: Callable[..., GatewaySettings],
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with four partitions on ``any_redis``, over real HTTP."""
    where = (
        {"redis_url": request.getfixturevalue("redis_cluster_url"), "redis_cluster": True}
        if isinstance(any_redis, RedisCluster)
        else {}
    )
    app = build_app(gateway_settings(topic_partitions=N, **where))
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield http


async def test_each_webhook_is_stored_once_on_its_calls_partition(
    gateway: httpx.AsyncClient, signer: WebhookSigner, any_redis: RedisClient
) -> None:
    events = [(t, call, f"{t}/{call}/{i}") for call in CALLS for t in EVENT_TYPES for i in range(2)]
    bodies = [
        make_event(t, event_id, call_control_id=call)
        for _ in range(3)
        for t, call, event_id in events
    ]  # each three times at once
    responses = await asyncio.gather(
        *(gateway.post(PATH, **signed_post(signer, body)) for body in bodies)
    )
    assert [r.status_code for r in responses] == [200] * len(bodies)
    per_event: dict[str, Counter[str]] = {}
    for (t, call, event_id), response in zip(events * 3, responses, strict=True):
        answer = response.json()
        per_event.setdefault(event_id, Counter())[answer["status"]] += 1
        if answer["status"] == "stored":  # the topic named, the entry on the call's partition
            assert answer["topic"] == telnyx_topic(t)
            [(_, fields)] = await any_redis.xrange(
                stream_for(answer["topic"], call, N), answer["entry"], answer["entry"]
            )
            assert fields[b"id"] == event_id.encode()
    assert all(counts == Counter(stored=1, duplicate=2) for counts in per_event.values()), per_event

    # A later re-delivery (Telnyx's retry) is a duplicate too: same call, same partition, same key.
    t, call, event_id = events[5]
    again = await gateway.post(
        PATH, **signed_post(signer, make_event(t, event_id, call_control_id=call))
    )
    assert again.json() == {"status": "duplicate", "id": event_id}
    assert await any_redis.exists(dedupe_key(stream_for(telnyx_topic(t), call, N), event_id))

    for event_type in EVENT_TYPES:
        topic = telnyx_topic(event_type)
        assert not await any_redis.exists(topic)
        used = set()
        for stream in streams_of(topic, N):
            for _, fields in await any_redis.xrange(stream):
                assert stream == stream_for(topic, fields[b"call_control_id"].decode(), N)
                used.add(stream)
        assert used == set(streams_of(topic, N)), "twelve calls use every partition"
        stored = [
            fields[b"id"].decode()
            for stream in streams_of(topic, N)
            for _, fields in await any_redis.xrange(stream)
        ]
        assert sorted(stored) == sorted(e for tt, _, e in events if tt == event_type)


async def test_an_event_without_a_call_goes_to_partition_zero(
    gateway: httpx.AsyncClient, signer: WebhookSigner, any_redis: RedisClient
) -> None:
    body = make_event("call.bridged", "no-call", call_control_id=None)
    answer = (await gateway.post(PATH, **signed_post(signer, body))).json()
    assert answer["status"] == "stored" and await any_redis.xrange(
        "telnyx.call.bridged:p0", answer["entry"], answer["entry"]
    )
    assert (await gateway.post(PATH, **signed_post(signer, body))).json()["status"] == "duplicate"
    assert await any_redis.xlen("telnyx.call.bridged:p0") == 1
