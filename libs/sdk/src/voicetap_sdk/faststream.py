"""FastStream apps on voicetap topics (``pip install voicetap-sdk[faststream]``).

FastStream 0.7's Redis broker reads voicetap's plain-field entries but hands a handler
``{"id", "type", "event": "<JSON string>"}``; :func:`decode_event` (a FastStream ``decoder``)
turns the entry into its topic's typed event, as ``Subscriber`` does. FastStream drives the
loop, so the guarantees are what it does plus what :class:`Guarantees` adds beside it
(docs/CONSUMERS.md compares them with ``Subscriber``'s):

- FastStream acknowledges after the handler returned, and leaves an entry whose handler raised
  pending, never redelivered by the subscriber that read it;
- :meth:`Guarantees.stream_subs` gives, per stream (each partition of a partitioned topic), the
  subscriber of new entries and a second one, FastStream's ``min_idle_time`` (XAUTOCLAIM), which
  takes entries idle past ``claim_idle_ms``: those of a handler that raised, of a consumer that
  died;
- FastStream creates a group at ``$`` (only entries written after its first start):
  :meth:`Guarantees.start`, on the app's startup, creates it first, at ``0`` unless
  ``start="now"``;
- FastStream has no delivery limit: :meth:`Guarantees.start` runs a loop beside the app that moves
  entries delivered ``max_deliveries`` times or more, idle past ``claim_idle_ms``, to
  ``<topic>.dlq`` (without the error: FastStream keeps none) and acknowledges them.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, cast

from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub

from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.connection import Connection
from voicetap_sdk.consumer import create_groups, dead_letter
from voicetap_sdk.decoding import decode
from voicetap_sdk.partitions import topic_of_stream, topic_of_streams
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE
from voicetap_sdk.streams import Entry, stream_entry

log = logging.getLogger("voicetap.sdk.faststream")

DEAD_LETTER_CONSUMER = "voicetap-dead-letters"


def entry_of(message: StreamMessage[Any]) -> Entry:
    """The voicetap entry a FastStream stream message carries (not in a batch)."""
    raw = cast("dict[str, Any]", message.raw_message)
    stream = str(raw["channel"])
    entry_id = cast("list[bytes]", raw.get("message_ids") or [b"0-0"])[0]
    fields = cast("dict[bytes, bytes]", raw["data"])
    return stream_entry(topic_of_stream(stream), stream, entry_id, fields)


async def decode_event(message: StreamMessage[Any]) -> Any:
    """FastStream ``decoder``: the typed event of the entry's topic (``voicetap_sdk.decoding``).
    An entry that is not its topic's model raises, stays pending, and is dead-lettered after
    ``max_deliveries`` like any failure."""
    return decode(entry_of(message))


async def decode_entry(message: StreamMessage[Any]) -> Entry:
    """FastStream ``decoder`` for a topic without a model: the :class:`Entry` itself."""
    return entry_of(message)


class Guarantees:
    """Beside a FastStream app: its groups created where asked, idle entries claimed by its
    subscribers, and a dead-letter policy. ``FastStream(broker, on_startup=[g.start],
    on_shutdown=[g.stop])``."""

    def __init__(
        self,
        redis_url: str,
        *,
        group: str,
        topics: Sequence[str],
        consumer: str,
        start: Literal["beginning", "now"] = "beginning",
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        interval_s: float = 5.0,
        partitions: int | None = None,
        cluster: bool | None = None,
    ) -> None:
        self.group = group
        self.consumer = consumer
        self._topics = list(topics)
        self._start: Literal["beginning", "now"] = start
        self._max_deliveries = max_deliveries
        self.claim_idle_ms = claim_idle_ms
        self._interval_s = interval_s
        self._connection = Connection(redis_url, cluster=cluster, partitions=partitions)
        self._stream_topic = topic_of_streams(self._topics, self._connection.partitions)
        self._stop = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def stream_subs(self, topic: str, *, polling_interval_ms: int = 1000) -> list[StreamSub]:
        """The subscriptions of ``topic`` for one handler: per stream of the topic, new entries
        and entries idle past ``claim_idle_ms`` (FastStream's ``min_idle_time``)."""
        if topic not in self._topics:
            raise ValueError(f"{topic}: not one of the topics given to Guarantees")
        subs: list[StreamSub] = []
        for stream, of in self._stream_topic.items():
            if of == topic:
                subs.append(
                    StreamSub(
                        stream,
                        group=self.group,
                        consumer=self.consumer,
                        polling_interval=polling_interval_ms,
                    )
                )
                subs.append(
                    StreamSub(
                        stream,
                        group=self.group,
                        consumer=self.consumer,
                        min_idle_time=self.claim_idle_ms,
                    )
                )
        return subs

    def subscribe(
        self,
        broker: RedisBroker,
        topic: str,
        handler: Callable[..., Awaitable[Any]],
        *,
        decoder: Callable[[StreamMessage[Any]], Awaitable[Any]] = decode_event,
    ) -> None:
        """Subscribe ``handler`` to ``topic`` on ``broker`` (:meth:`stream_subs`), each call
        given the typed event. The claiming subscribers stay out of the AsyncAPI document: they
        read the same channels."""
        for stream in self.stream_subs(topic):
            claims = stream.min_idle_time is not None
            broker.subscriber(stream=stream, decoder=decoder, include_in_schema=not claims)(handler)

    async def start(self) -> None:
        """Create the groups (before FastStream would, at ``$``), then start the dead-letter loop."""
        await create_groups(
            await self._connection.client(), self.group, list(self._stream_topic), self._start
        )
        self._stop.clear()
        self._loop = asyncio.create_task(self._dead_letters())

    async def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        await self._connection.close()

    async def dead_letter_exhausted(self) -> int:
        """Move every entry delivered ``max_deliveries`` times or more and idle past
        ``claim_idle_ms`` to its dead-letter topic, acknowledged; returns how many."""
        redis = await self._connection.client()
        producer = await self._connection.producer()
        moved = 0
        for stream, topic in self._stream_topic.items():
            pending = await redis.xpending_range(
                stream, self.group, min="-", max="+", count=100, idle=self.claim_idle_ms
            )
            exhausted: list[int | bytes | str | memoryview] = [
                p["message_id"]
                for p in pending
                if int(p["times_delivered"]) >= self._max_deliveries
            ]
            if not exhausted:
                continue
            claimed = await redis.xclaim(
                stream, self.group, DEAD_LETTER_CONSUMER, self.claim_idle_ms, exhausted
            )
            for entry_id, fields in cast("list[tuple[bytes, dict[bytes, bytes] | None]]", claimed):
                if fields is None:  # trimmed away while pending
                    await redis.xack(stream, self.group, entry_id)
                    continue
                entry = stream_entry(topic, stream, entry_id, fields)
                failures = f"{self._max_deliveries}+ deliveries failed (FastStream keeps no error)"
                await dead_letter(
                    redis, producer, self.group, entry, self._max_deliveries, failures
                )
                moved += 1
        return moved

    async def _dead_letters(self) -> None:
        backoff = Backoff("redis", log, first=0.2, cap=10.0, context={"group": self.group})
        while not self._stop.is_set():
            try:
                await self.dead_letter_exhausted()
                backoff.succeeded()
            except REDIS_UNAVAILABLE as exc:
                await backoff.failed(exc, self._stop)
                continue
            await sleep_or_stop(self._stop, self._interval_s)
