"""Trimming topics by age (``XTRIM MINID``), the bound ``TOPIC_MAXLEN`` cannot give: a quiet
topic would keep its million entries for months, a busy one turns over in hours.

Every stream whose name starts with ``telnyx.`` or ``voicetap.`` is swept, dead-letter topics
included, so a topic nobody declared anywhere is bounded too. Entries are trimmed by their id's
time (when they were stored), exactly, whether or not a group has read them: the age is also
the longest a lagging consumer can fall behind without losing entries.

On Redis Cluster the SCAN runs on every primary (redis-py's cluster client keeps one cursor per
node), and each XTRIM goes to the node of its stream.
"""

import asyncio
import logging
import time
from collections.abc import Callable

from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.topics import TELNYX_PREFIX, VOICETAP_PREFIX

log = logging.getLogger("voicetap.gateway.retention")

TOPIC_PREFIXES = (TELNYX_PREFIX.encode(), VOICETAP_PREFIX.encode())


async def trim_older_than(
    redis: RedisClient, max_age_seconds: float, now: float | None = None
) -> dict[str, int]:
    """Drop every topic's entries stored more than ``max_age_seconds`` before ``now``; the count
    dropped per topic (topics that lost nothing are left out). One SCAN over the streams (the
    server skips every other key), the topic prefixes checked here."""
    cutoff_ms = int(((time.time() if now is None else now) - max_age_seconds) * 1000)
    minid = f"{max(cutoff_ms, 0)}-0"
    trimmed: dict[str, int] = {}
    async for key in redis.scan_iter(count=1000, _type="STREAM"):
        name = key if isinstance(key, bytes) else key.encode()
        if not name.startswith(TOPIC_PREFIXES):
            continue
        dropped = await redis.xtrim(key, minid=minid, approximate=False)
        if dropped:
            trimmed[name.decode()] = int(dropped)
    return trimmed


class RetentionSweeper:
    """Runs :func:`trim_older_than` at start and then every ``interval_seconds``; while Redis
    fails, sweeps are retried with :class:`~voicetap_sdk.backoff.Backoff` pauses (up to the
    interval), the outage logged when it starts and when it ends."""

    def __init__(
        self,
        redis: RedisClient,
        max_age_seconds: float,
        interval_seconds: float = 60.0,
        on_trimmed: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self._redis = redis
        self._max_age = max_age_seconds
        self._interval = interval_seconds
        self._on_trimmed = on_trimmed

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(
            "redis", log, first=1.0, cap=self._interval, context={"task": "retention"}
        )
        while not stop.is_set():
            try:
                trimmed = await trim_older_than(self._redis, self._max_age)
            except REDIS_UNAVAILABLE as exc:
                await backoff.failed(exc, stop)
                continue
            backoff.succeeded()
            if trimmed:
                if self._on_trimmed is not None:
                    self._on_trimmed(trimmed)
                log.info(
                    "topics trimmed by age",
                    extra={"max_age_seconds": self._max_age, "trimmed": trimmed},
                )
            await sleep_or_stop(stop, self._interval)
