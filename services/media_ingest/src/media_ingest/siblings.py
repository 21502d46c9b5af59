"""The other workers of this host, each on a private loopback port: which of them holds a call
(a media stream that lands here is relayed there), and whether each is ready."""

import asyncio
from collections.abc import Mapping

from media_ingest.keys import owner_key
from media_ingest.redis_values import text
from voicetap_sdk.redis_client import RedisClient

PROBE_SECONDS = 1.0
WORKER_READINESS = "/readyz?worker"  # a worker's own readiness, without asking its siblings


class Siblings:
    def __init__(self, redis: RedisClient, ports: Mapping[str, int]) -> None:
        """``ports``: instance -> private port of each other worker of the host."""
        self._redis = redis
        self._ports = dict(ports)

    async def holder_port(self, call_control_id: str) -> int | None:
        """The private port of the sibling holding the call; None: this worker, another host's
        instance or nobody holds it (the stream is taken here, as without workers)."""
        holder = await self._redis.get(owner_key(call_control_id))
        return None if holder is None else self._ports.get(text(holder))

    async def metrics(self, token: str | None) -> dict[str, str | None]:
        """Each sibling's own metrics (text), None for one that did not answer in time;
        ``token``: ``VOICETAP_METRICS_TOKEN``, when set."""
        answers = await asyncio.gather(*(_metrics(port, token) for port in self._ports.values()))
        return dict(zip(self._ports, answers, strict=True))

    async def ready(self) -> dict[str, bool]:
        """One check per sibling, named by its instance and address."""
        answers = await asyncio.gather(*(_ready(port) for port in self._ports.values()))
        return {
            f"{instance} (127.0.0.1:{port})": ok
            for (instance, port), ok in zip(self._ports.items(), answers, strict=True)
        }


async def _metrics(port: int, token: str | None) -> str | None:
    """A sibling's own metrics from its private port; None when it does not answer in time."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(
                    f"GET /metrics?worker HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
                )
                response = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    head, _, body = response.partition(b"\r\n\r\n")
    if head.split(b" ", 2)[1:2] != [b"200"]:
        return None
    return body.decode("utf-8", "replace")


async def _ready(port: int) -> bool:
    """The worker's own ``/readyz`` answers 200 (HTTP/1.0 by hand: one line to read)."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {WORKER_READINESS} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return status.split()[1:2] == [b"200"]
