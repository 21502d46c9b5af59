"""Redis connections with explicit, short bounds, to one server or to a Redis Cluster.

redis-py retries failed commands by default with a backoff measured in seconds; the gateway must
answer Telnyx within 2 s whatever Redis does, so every client here says how long it may wait and
whether it retries. On a cluster (``REDIS_CLUSTER``) a MOVED or ASK redirection is still followed
(that is routing, not a retry), and a node that failed makes the client re-read the slot map
before its next command.
"""

import asyncio
from collections.abc import Iterable
from typing import Any, TypeAlias

from redis import Redis as SyncRedis
from redis import RedisCluster as SyncRedisCluster
from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

RedisClient: TypeAlias = Redis | RedisCluster
"""A Redis client, on one server or on a cluster: what every service module takes."""

SyncRedisClient: TypeAlias = SyncRedis | SyncRedisCluster
"""The same for the synchronous command line."""

REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    TimeoutError,
    OSError,
    RedisError,
    RedisClusterException,
)
"""What a Redis outage raises. A cluster client adds ``RedisClusterException``, which is no
``RedisError``: no node reachable to read the slot map from, a slot no node serves."""


def keys_by_slot(cluster: RedisCluster | SyncRedisCluster, keys: Iterable[str]) -> list[list[str]]:
    """``keys`` grouped by hash slot, in the order first seen: what one multi-key command (an
    XREAD or XREADGROUP over several streams) may take on a cluster."""
    by_slot: dict[int, list[str]] = {}
    for key in keys:
        by_slot.setdefault(cluster.keyslot(key), []).append(key)
    return list(by_slot.values())


def connect(
    url: str, *, cluster: bool, timeout_seconds: float, blocking_ms: int = 0
) -> RedisClient:
    """A client (not yet connected: redis-py connects on first use) on ``url`` (``REDIS_URL``, a
    node of the cluster when ``cluster``), each round trip bounded by ``timeout_seconds``.

    ``blocking_ms`` is the longest blocking read (XREADGROUP BLOCK) the client will issue; the
    socket timeout leaves room for it.
    """
    timeout = timeout_seconds
    return client_for(
        url,
        cluster=cluster,
        socket_timeout=timeout + blocking_ms / 1000,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


# Connections of one client to a single server. redis-py's default (100, then MaxConnectionsError)
# fails a burst: a consumer handles up to a batch (500) of calls' entries concurrently. (A
# blocking pool that waits for a free connection is slower still under such a burst: measured.)
MAX_CONNECTIONS = 1024


def client_for(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """A client on ``url``, or on the cluster ``url`` is a node of when ``cluster``."""
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, max_connections=MAX_CONNECTIONS, **options)


def sync_client_for(url: str, *, cluster: bool, **options: Any) -> SyncRedisClient:
    """:func:`client_for`, synchronous."""
    if cluster:
        return SyncRedisCluster.from_url(url, **options)
    return SyncRedis.from_url(url, **options)


async def ping(redis: RedisClient, timeout: float) -> bool:
    """True when Redis (every node of a cluster) answers PING within ``timeout`` seconds."""
    try:
        return bool(await asyncio.wait_for(redis.ping(), timeout))
    except Exception:
        return False


async def is_cluster(url: str, timeout_seconds: float) -> bool:
    """Whether the server at ``url`` is a node of a Redis Cluster (``INFO cluster``), so that a
    caller never has to say so. Raises one of :data:`REDIS_UNAVAILABLE` when it does not answer."""
    probe = Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        info = await probe.info("cluster")
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        await probe.aclose()
