"""The indexer's part of an erasure (``voicetap_common.erasure``): the group
``transcript_indexer.erasure`` over ``voicetap.erasure.requested``.

Each step is idempotent and the entry is acknowledged only after the last, so a worker killed
half-way leaves the request pending and whichever consumer claims it redoes the rest. A number is
resolved to its calls once: the ids are kept in Redis under the request's id before anything is
deleted, so a resumed request still knows the calls whose rows it already removed.
"""

import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from transcript_indexer.live import LiveFeed
from transcript_indexer.query import number_spellings
from transcript_indexer.storage.base import Storage, StorageUnavailable
from voicetap_common.erasure import INDEXER_PART, gone_topic, set_tombstones, sweep_topics
from voicetap_sdk import codec
from voicetap_sdk.consumer import RetryLater, Undeliverable
from voicetap_sdk.erasure_events import CallGone, ErasureProgress, ErasureRequest
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry, Producer
from voicetap_sdk.topics import ERASURE_PROGRESS, ERASURE_REQUESTED

log = logging.getLogger("voicetap.transcript_indexer.erasure")

GROUP = "transcript_indexer.erasure"
TOPICS = (ERASURE_REQUESTED,)
_RESOLVED_PREFIX = "voicetap:erasure:calls:"  # -> the call ids a request resolved to


class Eraser:
    def __init__(
        self,
        storage: Storage,
        redis: RedisClient,
        live: LiveFeed,
        producer: Producer,
        tombstone_seconds: int,
        registry: CollectorRegistry,
    ) -> None:
        self._storage = storage
        self._redis = redis
        self._live = live
        self._producer = producer
        self._tombstone_seconds = tombstone_seconds
        self._erased = Counter(
            "voicetap_indexer_calls_erased_total",
            "Calls whose rows this process erased",
            ["reason"],
            registry=registry,
        )

    async def handle(self, entries: list[Entry]) -> None:
        """The StreamConsumer's handler: one request after the other."""
        for entry in entries:
            try:
                request = ErasureRequest.model_validate(codec.loads(entry.body))
            except (ValidationError, codec.JSONDecodeError) as exc:
                raise Undeliverable(f"entry {entry.entry_id} is not an erasure request") from exc
            if (request.call_control_id is None) == (request.number is None):
                raise Undeliverable(f"request {request.id} names neither one call nor one number")
            try:
                await self.erase(request)
            except StorageUnavailable as exc:
                raise RetryLater(str(exc)) from exc

    async def erase(self, request: ErasureRequest) -> ErasureProgress:
        """Everything the indexer holds about the request's calls, and their entries on every topic."""
        call_ids = await self._resolve(request)
        await set_tombstones(self._redis, call_ids, self._tombstone_seconds)
        removed = await self._storage.erase_calls(call_ids)
        removed["live_streams"] = await self._live.drop(call_ids)
        removed["topic_entries"] = await sweep_topics(self._redis, call_ids)
        now = datetime.now(UTC)
        topic = gone_topic(request.reason)
        for call_id in call_ids:
            event_id = f"{topic.removeprefix('voicetap.')}:{call_id}"
            gone = CallGone(
                event_type=topic,
                id=event_id,
                occurred_at=now,
                call_control_id=call_id,
                request_id=request.id,
                reason=request.reason,
            )
            await self._producer.publish_once(
                topic,
                event_id,
                topic,
                codec.dumps(gone.model_dump(mode="json")),
                window_seconds=self._tombstone_seconds,
                call_control_id=call_id,
            )
        progress = ErasureProgress(
            id=f"{request.id}:{INDEXER_PART}",
            occurred_at=now,
            request_id=request.id,
            reason=request.reason,
            part=INDEXER_PART,
            call_control_ids=call_ids,
            removed=removed,
        )
        await self._producer.publish_model(
            ERASURE_PROGRESS, progress.id, ERASURE_PROGRESS, progress
        )
        self._erased.labels(request.reason).inc(removed.get("calls", 0))
        log.info(
            "erasure part done",
            extra={"request": request.id, "reason": request.reason, "calls": len(call_ids)},
        )
        return progress

    async def _resolve(self, request: ErasureRequest) -> list[str]:
        if request.call_control_id is not None:
            return [request.call_control_id]
        assert request.number is not None
        key = _RESOLVED_PREFIX + request.id
        found = await self._storage.calls_of_numbers(number_spellings(request.number))
        if found:
            await self._redis.sadd(key, *found)
            await self._redis.expire(key, self._tombstone_seconds)
        members: set[bytes] = await self._redis.smembers(key)  # type: ignore[assignment]  # replies stay bytes (no decode_responses)
        return sorted(member.decode() for member in members)
