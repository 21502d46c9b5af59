"""The gateway on a three-node Redis Cluster: signed webhooks over topics on every node stored
exactly once, a concurrent burst of duplicates included; a node that lost its script cache; topics
trimmed by age on every node."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import RedisCluster

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from voicetap_sdk.topics import telnyx_topic
from webhook_gateway.main import build_app
from webhook_gateway.retention import trim_older_than
from webhook_gateway.settings import GatewaySettings

PATH = "/webhooks/telnyx"
# Their topics hash to slots of all three nodes of the test cluster.
EVENT_TYPES = [
    "call.initiated", "call.answered", "call.hangup", "call.transcription", "call.fork.started", "call.fork.stopped",
    "streaming.started", "streaming.stopped", "streaming.failed", "call.bridged", "call.dtmf.received", "call.recording.saved",
]  # fmt: skip
HOUR_MS = 3_600_000


@pytest.fixture
async def gateway(
    redis_cluster: RedisCluster,
    redis_cluster_url: str,
    gateway_settings: Callable[..., GatewaySettings],
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on the cluster (emptied first), over real HTTP."""
    app = build_app(gateway_settings(redis_url=redis_cluster_url, redis_cluster=True))
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


def spans_every_node(redis: RedisCluster, keys: list[str]) -> bool:
    return {redis.get_node_from_key(key).name for key in keys} == {
        node.name for node in redis.get_primaries()
    }


async def post_all(
    gateway: httpx.AsyncClient, signer: WebhookSigner, bodies: list[bytes]
) -> list[str]:
    """Every body posted at once; the status the gateway answered for each."""
    responses = await asyncio.gather(
        *(gateway.post(PATH, **signed_post(signer, body)) for body in bodies)
    )
    assert [r.status_code for r in responses] == [200] * len(bodies), [
        r.text for r in responses if r.status_code != 200
    ]
    return [r.json()["status"] for r in responses]


async def stored_ids(redis: RedisCluster, event_type: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in await redis.xrange(telnyx_topic(event_type))]


async def test_a_burst_with_concurrent_duplicates_over_topics_on_every_node_is_stored_once(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis_cluster: RedisCluster
) -> None:
    assert spans_every_node(redis_cluster, [telnyx_topic(t) for t in EVENT_TYPES])
    events = [(t, f"{t}/{i}") for i in range(8) for t in EVENT_TYPES]
    deliveries = [
        make_event(t, event_id) for _ in range(3) for t, event_id in events
    ]  # each one three times, all at once

    statuses = await post_all(gateway, signer, deliveries)

    per_event: dict[str, Counter[str]] = {}
    for (_, event_id), status in zip(events * 3, statuses, strict=True):
        per_event.setdefault(event_id, Counter())[status] += 1
    assert all(counts == Counter(stored=1, duplicate=2) for counts in per_event.values()), per_event
    for event_type in EVENT_TYPES:
        assert sorted(await stored_ids(redis_cluster, event_type)) == sorted(
            f"{event_type}/{i}" for i in range(8)
        )


async def test_a_node_that_lost_its_scripts_gets_them_again_and_nothing_is_stored_twice(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis_cluster: RedisCluster
) -> None:
    assert await post_all(gateway, signer, [make_event(t, f"{t}/first") for t in EVENT_TYPES]) == [
        "stored"
    ] * len(EVENT_TYPES)
    flushed = redis_cluster.get_node_from_key(telnyx_topic("call.hangup"))
    await redis_cluster.execute_command(
        "SCRIPT FLUSH", target_nodes=flushed
    )  # as after a restart of that node

    statuses = await post_all(gateway, signer, [make_event(t, f"{t}/second") for t in EVENT_TYPES])

    assert statuses == ["stored"] * len(EVENT_TYPES)  # none reported as a duplicate of itself
    for event_type in EVENT_TYPES:
        assert await stored_ids(redis_cluster, event_type) == [
            f"{event_type}/first",
            f"{event_type}/second",
        ]


async def test_topics_are_trimmed_by_age_on_every_node(redis_cluster: RedisCluster) -> None:
    now_ms = int(time.time() * 1000)
    old, young = now_ms - 3 * HOUR_MS, now_ms - HOUR_MS // 2
    topics = [telnyx_topic(t) for t in EVENT_TYPES] + [
        "voicetap.recording.completed",
        "telnyx.call.hangup.dlq",
    ]
    assert spans_every_node(redis_cluster, topics)
    for topic in topics:
        for n, stamp in enumerate((old, old + 1, young)):
            await redis_cluster.xadd(topic, {"n": str(n)}, id=f"{stamp}-{n}")
    await redis_cluster.xadd("someone.elses.stream", {"n": "0"}, id=f"{old}-0")

    assert await trim_older_than(redis_cluster, max_age_seconds=3600) == dict.fromkeys(topics, 2)
    for topic in topics:
        assert [fields[b"n"] for _, fields in await redis_cluster.xrange(topic)] == [b"2"]
    assert await redis_cluster.xlen("someone.elses.stream") == 1
