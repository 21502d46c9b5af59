"""The SDK's one way to reach the stack's Redis: a server or a cluster, found out rather than told.

A :class:`Connection` opens its client on first use: it asks the server at the URL whether it is
a node of a Redis Cluster (``INFO cluster``) and opens a cluster client if so. The number of
topic partitions is the deployment's ``TOPIC_PARTITIONS``, read from the environment as the
services read it unless given.
"""

import asyncio
import os
from collections.abc import Mapping

from voicetap_sdk.redis_client import RedisClient, connect, is_cluster
from voicetap_sdk.streams import Producer

DEFAULT_MAXLEN = 1_000_000  # the services' TOPIC_MAXLEN default


def stack_redis_url(environ: Mapping[str, str]) -> str:
    """Where the stack keeps its topics: ``REDIS_URL``, else the embedded Redis that ``voicetap
    up`` starts (port ``VOICETAP_EMBEDDED_REDIS_PORT``, 6399 by default), as the ``voicetap``
    command finds it."""
    port = environ.get("VOICETAP_EMBEDDED_REDIS_PORT") or "6399"
    return environ.get("REDIS_URL") or f"redis://127.0.0.1:{port}/0"


def deployment_partitions(environ: Mapping[str, str]) -> int:
    """``TOPIC_PARTITIONS`` (1 when unset); raises ``ValueError`` naming it when it is no count."""
    text = environ.get("TOPIC_PARTITIONS") or "1"
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"TOPIC_PARTITIONS={text!r}: the number of topic partitions is 1 or more")
    return int(text)


def deployment_maxlen(environ: Mapping[str, str]) -> int:
    """``TOPIC_MAXLEN`` (the services' default when unset): the bound of every topic written."""
    text = environ.get("TOPIC_MAXLEN") or str(DEFAULT_MAXLEN)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"TOPIC_MAXLEN={text!r}: the bound of a topic is 1 entry or more")
    return int(text)


class Connection:
    def __init__(
        self,
        url: str,
        *,
        cluster: bool | None = None,
        partitions: int | None = None,
        maxlen: int | None = None,
        timeout_seconds: float = 5.0,
        blocking_ms: int = 0,
    ) -> None:
        """``cluster``, ``partitions``, ``maxlen``: None finds them out (``INFO cluster``,
        ``TOPIC_PARTITIONS``, ``TOPIC_MAXLEN``)."""
        self.url = url
        self.partitions = (
            partitions if partitions is not None else deployment_partitions(os.environ)
        )
        if self.partitions < 1:
            raise ValueError(f"partitions={self.partitions}: 1 or more")
        self._maxlen = maxlen if maxlen is not None else deployment_maxlen(os.environ)
        self._cluster = cluster
        self._timeout = timeout_seconds
        self._blocking_ms = blocking_ms
        self._client: RedisClient | None = None
        self._producer: Producer | None = None
        self._opening = asyncio.Lock()

    async def client(self) -> RedisClient:
        """The client, opened on first use; raises one of ``REDIS_UNAVAILABLE`` while the server
        does not answer whether it is a cluster."""
        async with self._opening:
            if self._client is None:
                cluster = self._cluster
                if cluster is None:
                    cluster = await is_cluster(self.url, self._timeout)
                self._client = connect(
                    self.url,
                    cluster=cluster,
                    timeout_seconds=self._timeout,
                    blocking_ms=self._blocking_ms,
                )
            return self._client

    async def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(await self.client(), self._maxlen, self.partitions)
        return self._producer

    async def close(self) -> None:
        client, self._client, self._producer = self._client, None, None
        if client is not None:
            await client.aclose()
