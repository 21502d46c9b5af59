"""``VOICETAP_RETENTION_DAYS``: calls that ended longer ago are erased, by the erasure's own path.

Every indexer process runs the sweeper; one sweep runs at a time across all of them, under a Redis
lease (``SET NX PX``, left to expire: at most one sweep per interval). A sweep asks for the calls'
erasure in batches, one request per call with reason ``expired`` under the id
``expire:<call_control_id>``, published once (``Producer.publish_once``): a sweep that outlasted its
lease, or one that finds calls whose erasure is still pending, never asks twice. The erasure group
(``transcript_indexer.erasure``) then removes the call everywhere and publishes
``voicetap.call.expired``.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from transcript_indexer.storage.base import Storage
from voicetap_sdk import codec
from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.erasure_events import ErasureRequest
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import ERASURE_REQUESTED

log = logging.getLogger("voicetap.transcript_indexer.retention")

LEASE_KEY = "voicetap:retention:lease"


def expiry_request_id(call_control_id: str) -> str:
    return f"expire:{call_control_id}"


class RetentionSweeper:
    def __init__(
        self,
        storage: Storage,
        redis: RedisClient,
        producer: Producer,
        *,
        retention: timedelta,
        interval_seconds: float,
        batch_size: int,
        holder: str,
        request_window_seconds: int,
        registry: CollectorRegistry,
    ) -> None:
        """``holder``: this process, named in the lease; ``request_window_seconds``: how long an
        expiry request is not published again."""
        self._storage = storage
        self._redis = redis
        self._producer = producer
        self._retention = retention
        self._interval = interval_seconds
        self._batch_size = batch_size
        self._holder = holder
        self._window = request_window_seconds
        self._requested = Counter(
            "voicetap_indexer_expiries_requested_total",
            "Calls past the retention whose erasure this process requested",
            registry=registry,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval until ``stop``; outages are logged and waited out."""
        backoff = Backoff("database or redis", log, first=1.0, cap=30.0)
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again; nothing expires early meanwhile
                await backoff.failed(exc, stop)
                continue
            backoff.succeeded()
            await sleep_or_stop(stop, self._interval)

    async def sweep(self) -> int | None:
        """One sweep when the lease is free: how many calls' erasure it requested; None when
        another process holds the lease."""
        taken = await self._redis.set(
            LEASE_KEY, self._holder, nx=True, px=max(int(self._interval * 1000), 1)
        )
        if not taken:
            return None
        requested = 0
        while True:
            now = datetime.now(UTC)
            due = await self._storage.ended_before(now - self._retention, self._batch_size)
            fresh = 0
            for call_control_id in due:
                fresh += await self._request(call_control_id, now)
            requested += fresh
            if len(due) < self._batch_size or not fresh:  # the rest is already requested
                break
        if requested:
            self._requested.inc(requested)
            log.info("calls past retention sent to erasure", extra={"calls": requested})
        return requested

    async def _request(self, call_control_id: str, now: datetime) -> bool:
        request = ErasureRequest(
            id=expiry_request_id(call_control_id),
            occurred_at=now,
            reason="expired",
            call_control_id=call_control_id,
        )
        entry = await self._producer.publish_once(
            ERASURE_REQUESTED,
            request.id,
            ERASURE_REQUESTED,
            codec.dumps(request.model_dump(mode="json")),
            window_seconds=self._window,
        )
        return entry is not None
