"""Publishing media events without ever making media wait for Redis.

Live events (analytics, audio, DTMF, marks, errors) are *offered*: put on a bounded in-memory queue
that one task drains to Redis in pipelined batches. When Redis is slow or down the queue fills and
what overflows is dropped and counted (``voicetap_ingest_events_dropped_total``); the packet path
and the WebSocket readers never await Redis. ``recording.completed`` is different: it is awaited
(with retries) on the control path and published once per call. Either way an event goes to the
stream the producer names for its call (its partition, with ``TOPIC_PARTITIONS`` above 1).
"""

import asyncio
import logging
import secrets
from collections import deque
from typing import Any

from pydantic import BaseModel
from redis.typing import EncodableT, FieldT

from media_ingest.metrics import IngestMetrics
from voicetap_sdk import codec
from voicetap_sdk.backoff import Backoff
from voicetap_sdk.media_events import Leg, MediaError, MediaErrorKind
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.streams import Producer, entry_fields
from voicetap_sdk.topics import MEDIA_ERROR

log = logging.getLogger("voicetap.media_ingest.events")

_BATCH = 500


class EventPublisher:
    def __init__(
        self,
        redis: RedisClient,
        producer: Producer,
        metrics: IngestMetrics,
        *,
        queue_size: int,
        maxlens: dict[str, int],
        default_maxlen: int,
    ) -> None:
        self._redis = redis
        self.producer = producer
        self._metrics = metrics
        self._queue: deque[tuple[str, str, dict[FieldT, EncodableT], int]] = (
            deque()
        )  # topic, stream, fields, maxlen
        self._size = queue_size
        self._maxlens = maxlens
        self._default_maxlen = default_maxlen
        self._wake = asyncio.Event()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(
        self,
        topic: str,
        event_id: str,
        event_type: str,
        model: BaseModel | dict[str, Any],
        **extra: str,
    ) -> bool:
        """Queue an event for publication; False (and counted) when the queue is full."""
        if len(self._queue) >= self._size:
            self._metrics.events_dropped.labels(topic).inc()
            return False
        body = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
        fields: dict[FieldT, EncodableT] = {
            name: value
            for name, value in entry_fields(
                event_id, event_type, codec.dumps(body), **extra
            ).items()
        }
        stream = self.producer.stream(topic, extra.get("call_control_id"))
        self._queue.append((topic, stream, fields, self._maxlens.get(topic, self._default_maxlen)))
        self._wake.set()
        return True

    def forget(self, call_control_id: str) -> int:
        """Drop the queued events of an erased call; how many there were."""
        before = len(self._queue)
        self._queue = deque(
            item for item in self._queue if item[2].get("call_control_id") != call_control_id
        )
        return before - len(self._queue)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain the queue to Redis until ``stop`` is set and the queue is empty."""
        backoff = Backoff("redis (media events)", log, first=0.1, cap=5.0)
        while not stop.is_set() or self._queue:
            if not self._queue:
                self._wake.clear()
                async with asyncio.TaskGroup() as group:
                    waiter = group.create_task(self._wake.wait())
                    stopper = group.create_task(stop.wait())
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    stopper.cancel()
                continue
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for _, stream, fields, maxlen in batch:
                        pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)
                    await pipe.execute()
            except REDIS_UNAVAILABLE as exc:
                # put the batch back as far as the bound allows; the rest is dropped and counted
                room = max(self._size - len(self._queue), 0)
                for item in reversed(batch[:room]):
                    self._queue.appendleft(item)
                for topic, _, _, _ in batch[room:]:
                    self._metrics.events_dropped.labels(topic).inc()
                if stop.is_set():
                    log.warning(
                        "redis unavailable for media events while stopping",
                        extra={"error": str(exc), "queued": len(self._queue)},
                    )
                    return
                await backoff.failed(exc, stop)
                continue
            backoff.succeeded()
            for topic, _, _, _ in batch:
                self._metrics.events_published.labels(topic).inc()

    async def publish_once(
        self,
        topic: str,
        event_id: str,
        event_type: str,
        model: BaseModel,
        stop: asyncio.Event | None = None,
        *,
        call_control_id: str,
    ) -> bool:
        """Publish ``model`` once per ``event_id`` (awaited; retried while Redis is away, until
        ``stop``); False when it gave up at ``stop``, True when it is on the topic."""
        body = codec.dumps(model.model_dump(mode="json"))
        backoff = Backoff(
            f"redis (publishing {event_id})", log, first=0.1, cap=5.0, context={"topic": topic}
        )
        while True:
            try:
                await self.producer.publish_once(
                    topic, event_id, event_type, body, call_control_id=call_control_id
                )
            except REDIS_UNAVAILABLE as exc:
                if stop is not None and stop.is_set():
                    log.error(
                        "could not publish before stopping",
                        extra={"topic": topic, "id": event_id, "error": str(exc)},
                    )
                    return False
                await backoff.failed(exc)
                continue
            backoff.succeeded()
            return True


class ErrorReporter:
    """Logs a media failure and offers it on ``voicetap.media.error``, naming this instance."""

    def __init__(self, publisher: EventPublisher, instance: str) -> None:
        self._publisher = publisher
        self._instance = instance

    def __call__(
        self,
        call_control_id: str | None,
        kind: MediaErrorKind,
        detail: str,
        *,
        telnyx_error: str | None = None,
        leg: Leg | None = None,
        payload_type: int | None = None,
    ) -> None:
        publish_error(
            self._publisher,
            self._instance,
            call_control_id,
            kind,
            detail,
            telnyx_error=telnyx_error,
            leg=leg,
            payload_type=payload_type,
        )


def publish_error(
    publisher: EventPublisher,
    instance: str,
    call_control_id: str | None,
    kind: MediaErrorKind,
    detail: str,
    *,
    telnyx_error: str | None = None,
    leg: Leg | None = None,
    payload_type: int | None = None,
) -> None:
    """Log a media failure and offer it on ``voicetap.media.error``."""
    log.warning(
        "media error", extra={"call_control_id": call_control_id, "kind": kind, "detail": detail}
    )
    # an error about a leg's payload type is said once per call: its id says which, for de-duplication
    suffix = f"{leg}:{payload_type}" if payload_type is not None else secrets.token_hex(4)
    event = MediaError(
        id=f"error:{kind}:{call_control_id}:{suffix}",
        call_control_id=call_control_id,
        kind=kind,
        detail=detail,
        telnyx_error=telnyx_error,
        leg=leg,
        payload_type=payload_type,
        instance=instance,
    )
    extra = {"call_control_id": call_control_id} if call_control_id else {}
    publisher.offer(MEDIA_ERROR, event.id, MEDIA_ERROR, event, **extra)
