"""Redis connections with explicit, short bounds.

redis-py retries failed commands by default with a backoff measured in seconds; the gateway must
answer Telnyx within 2 s whatever Redis does, so every client here says how long it may wait and
whether it retries.
"""

import asyncio

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from voicetap_common.settings import CommonSettings


def connect(settings: CommonSettings, *, blocking_ms: int = 0) -> Redis:
    """A client (not yet connected) bounded by ``settings.redis_timeout_seconds``.

    ``blocking_ms`` is the longest blocking read (XREADGROUP BLOCK) the client will issue; the
    socket timeout leaves room for it.
    """
    timeout = settings.redis_timeout_seconds
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout + blocking_ms / 1000,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


async def ping(redis: Redis, timeout: float) -> bool:
    """True when Redis answers PING within ``timeout`` seconds."""
    try:
        return bool(await asyncio.wait_for(redis.ping(), timeout))
    except Exception:
        return False
