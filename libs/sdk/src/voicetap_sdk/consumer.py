"""Consuming topics through a consumer group: at-least-once, with claim and dead-letter.

What FastStream 0.7.8's stream subscriber lacks (STACK.md), done once here for every service:

- groups are created at ``0`` (every entry ever written) unless the consumer asks for "from now";
- a batch is acknowledged only after the handler returned, i.e. after its effect is durable;
- a failing batch is retried entry by entry, so one poison entry does not hold the rest back;
- entries a dead or failing consumer holds are claimed by any consumer of the group once they
  have been idle for ``claim_idle_ms``; a consumer that comes back under the same name (a process
  restarted in place) takes its own pending entries back at once, before it reads anything new;
- an entry delivered ``max_deliveries`` times goes to ``<topic>.dlq`` with its error, and is
  acknowledged, so processing continues;
- an :class:`Undeliverable` entry (malformed) goes to the dead-letter topic at once;
- a :class:`RetryLater` from the handler (database down or locked) never counts as a failed
  delivery: the same batch is retried in place with backoff, never acknowledged and dropped;
- with ``read_ahead`` (the default) the next XREADGROUP is in flight while the handler of the
  current batch runs, and the acknowledgement of a handled batch travels in the same pipeline as
  the read after it. Entries read ahead are pending under this consumer like any others: never
  acknowledged before their own handler returned, claimable by the group if the process dies,
  skipped by this consumer's own claim cycle, and handled before :meth:`StreamConsumer.run`
  returns on ``stop``. Acknowledgements are never held back behind a blocking read: unless the read
  ahead came back with a full batch (so more is waiting), a handled batch is acknowledged at once.

On Redis Cluster (a ``RedisCluster`` client) the topics are read per hash slot instead
(:class:`~voicetap_sdk.slot_reads.SlotReads`: one XREADGROUP per slot, all in flight, the block
time shared), and acknowledgements go out just before the read rather than in its pipeline; the
guarantees above are the same. A single server keeps the one XREADGROUP over every topic.

With ``partitions`` above 1 (``TOPIC_PARTITIONS``) each partitioned topic is read as its partition
streams (``voicetap_sdk.partitions``): the group is created on each, entries are acknowledged
and claimed on the stream that holds them, and the handler, the metrics and the dead-letter topic
see the topic (``Entry.topic``; ``Entry.stream`` is where the entry lives). With 1, the topics are
the streams, as they always were.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from voicetap_sdk.backoff import Backoff
from voicetap_sdk.partitions import topic_of_streams
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.slot_reads import SlotReads
from voicetap_sdk.streams import Entry, Fields, Producer, entries_of, stream_entry
from voicetap_sdk.topics import dlq_topic

log = logging.getLogger("voicetap.consumer")

Handler = Callable[[list[Entry]], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler when the failure is outside the entries (a database is down or locked)."""


class Undeliverable(Exception):
    """Raised by a handler for an entry that can never succeed (malformed): dead-lettered at once."""


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    group: str
    topics: Sequence[str]
    consumer: str = ""
    start: Literal["beginning", "now"] = "beginning"
    batch_size: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_interval_s: float = 5.0
    max_deliveries: int = 5
    ghost_idle_ms: int = 600_000  # a consumer this idle with nothing pending is a ghost: removed
    retry_backoff_max_s: float = 10.0
    read_ahead: bool = True
    partitions: int = 1  # TOPIC_PARTITIONS: the same in every process of the deployment


def default_consumer_name() -> str:
    """Unique per process, so a restarted process never inherits a stale name."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ConsumerMetrics(Protocol):
    """What a consumer reports, for whoever counts it (the services pass Prometheus counters,
    ``voicetap_common.consumer_metrics``); :class:`NoMetrics` counts nothing."""

    def entries_handled(self, group: str, topic: str, count: int) -> None: ...
    def entry_failed(self, group: str, topic: str) -> None: ...
    def entry_dead_lettered(self, group: str, topic: str) -> None: ...
    def entries_claimed(self, group: str, topic: str, count: int) -> None: ...
    def batch_handled(self, group: str, seconds: float) -> None: ...


class NoMetrics:
    """The :class:`ConsumerMetrics` of a consumer nobody measures."""

    def entries_handled(self, group: str, topic: str, count: int) -> None:
        pass

    def entry_failed(self, group: str, topic: str) -> None:
        pass

    def entry_dead_lettered(self, group: str, topic: str) -> None:
        pass

    def entries_claimed(self, group: str, topic: str, count: int) -> None:
        pass

    def batch_handled(self, group: str, seconds: float) -> None:
        pass


class StreamConsumer:
    """Reads ``options.topics`` as ``options.group`` and feeds batches to ``handler``."""

    def __init__(
        self,
        redis: RedisClient,
        producer: Producer,
        options: ConsumerOptions,
        handler: Handler,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._redis = redis
        self._producer = producer
        self._options = options
        self._consumer = options.consumer or default_consumer_name()
        self._handler = handler
        self._metrics: ConsumerMetrics = metrics or NoMetrics()
        self._last_claim = 0.0
        self._ahead: asyncio.Task[list[Entry]] | None = (
            None  # the read in flight while a batch is handled
        )
        self._ready: list[Entry] | None = (
            None  # a read-ahead batch collected before a claim cycle, not yet handled
        )
        self._unacked: list[Entry] = []  # handled; acknowledged with the next read
        self._stream_topic = topic_of_streams(
            options.topics, options.partitions
        )  # every stream read -> its topic
        self._streams = list(self._stream_topic)  # the topics themselves, unless partitioned
        self._topic_of = (
            None if options.partitions == 1 else self._stream_topic
        )  # None: every stream is its topic
        self._slot_reads = (  # None on a single server: one XREADGROUP reads every stream
            SlotReads(
                redis,
                options.group,
                self._consumer,
                self._streams,
                self._topic_of,
                count=options.batch_size,
                block_ms=options.block_ms,
            )
            if isinstance(redis, RedisCluster)
            else None
        )

    @property
    def consumer_name(self) -> str:
        return self._consumer

    async def ensure_groups(self) -> None:
        await create_groups(self._redis, self._options.group, self._streams, self._options.start)

    def _topics_label(self) -> str:
        topics = self._options.topics
        more = f" +{len(topics) - 1}" if len(topics) > 1 else ""
        return f"{topics[0]}{more}" if topics else "no topic"

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; Redis outages are waited out, never fatal.

        On ``stop`` the batch already read ahead is handled and every handled entry acknowledged
        before this returns; cancelled instead, the read in flight is abandoned (what it read
        stays pending, to be claimed)."""
        backoff = Backoff(
            f"redis (group {self._options.group}, consumer {self._consumer}, {self._topics_label()})",
            log,
            first=0.2,
            cap=self._options.retry_backoff_max_s,
            context={"group": self._options.group, "consumer": self._consumer},
        )
        taken_back = False
        try:
            while not stop.is_set():
                try:
                    await self.ensure_groups()
                    if not taken_back:
                        await self._take_back_own()
                        taken_back = True
                    while not stop.is_set():
                        await self.run_once()
                        # Only a whole step ends an outage: a pooled connection from before it
                        # fails once more after the first command got through on a new one.
                        backoff.succeeded()
                    await self.finish()
                    await self.leave()
                except REDIS_UNAVAILABLE as exc:
                    self._drop_failed_read_ahead()
                    await self._drop_idle_connections()
                    await backoff.failed(exc, stop)
        finally:
            self._abandon_read_ahead()

    async def run_once(self) -> int:
        """One step: claim idle entries when due, else handle the next batch. Returns entries handled."""
        now = time.monotonic()
        if now - self._last_claim >= self._options.claim_interval_s:
            self._last_claim = now
            held = await self._collect_read_ahead()
            if self._unacked:  # handled entries must not look idle to the claim below
                await self._ack(self._take_unacked())
            claimed = await self._claim_idle(exclude={entry.entry_id for entry in held})
            await self.prune_ghosts()
            if claimed:
                return claimed
        entries = await self._next_batch()
        if entries:
            if self._options.read_ahead:
                self._ahead = asyncio.create_task(self._read(self._take_unacked()))
            try:
                await self._handle(entries, defer_ack=self._options.read_ahead)
            except BaseException:
                self._abandon_read_ahead()  # e.g. the process is going down: read no further
                raise
        return len(entries)

    async def finish(self) -> None:
        """Handle the batch read ahead (if any), then acknowledge everything handled. Reads no more."""
        entries = await self._collect_read_ahead()
        self._ready = None
        if entries:
            await self._handle(entries)
        if self._unacked:
            await self._ack(self._take_unacked())

    async def leave(self) -> None:
        """Remove this consumer from the group on every stream where it holds nothing pending, so
        that the group counts live consumers only. One holding pending entries stays: removing it
        would drop them, and they are to be claimed."""
        for stream in self._streams:
            held = await self._redis.xpending_range(
                stream, self._options.group, min="-", max="+", count=1, consumername=self._consumer
            )
            if not held:
                await self._redis.xgroup_delconsumer(stream, self._options.group, self._consumer)

    async def prune_ghosts(self) -> int:
        """Remove the group's consumers idle past ``ghost_idle_ms`` with nothing pending: those of
        processes that died or restarted under a new name. Returns how many were removed. One that
        was only quiet comes back with its next read."""
        removed = 0
        for stream in self._streams:
            for consumer in await self._redis.xinfo_consumers(stream, self._options.group):
                name = consumer["name"]
                name = name.decode() if isinstance(name, bytes) else str(name)
                if (
                    name != self._consumer
                    and int(consumer["pending"]) == 0
                    and int(consumer["idle"]) >= self._options.ghost_idle_ms
                ):
                    await self._redis.xgroup_delconsumer(stream, self._options.group, name)
                    removed += 1
        return removed

    async def _next_batch(self) -> list[Entry]:
        if self._ready is not None:
            entries, self._ready = self._ready, None
            return entries
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            return await task
        return await self._read(self._take_unacked())

    async def _collect_read_ahead(self) -> list[Entry]:
        """Wait for the read in flight, so that its entries are known (and kept for handling). On a
        cluster, reads of other slots may still be in flight after it: they are waited for too."""
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            self._ready = await task
        if self._slot_reads is not None and (drained := await self._slot_reads.drain()):
            self._ready = (self._ready or []) + drained
        return self._ready or []

    def _read_ahead_is_full(self) -> bool:
        """The read ahead came back with a full batch: the read after it will not block (more is
        waiting), so an acknowledgement riding with it goes out at once, and so does its count."""
        ahead = self._ahead
        return (
            ahead is not None
            and ahead.done()
            and not ahead.cancelled()
            and ahead.exception() is None
            and len(ahead.result()) >= self._options.batch_size
        )

    async def _drop_idle_connections(self) -> None:
        """Close the pooled connections nobody uses: opened before the outage, each would fail
        once more after it (the clients do not retry) and start a second outage in the log. A
        cluster client replaces its nodes' connections itself."""
        if isinstance(self._redis, Redis):
            await self._redis.connection_pool.disconnect(inuse_connections=False)

    def _drop_failed_read_ahead(self) -> None:
        """Forget a read ahead that failed with the outage, so it is not raised again once Redis
        is back; one that read entries before the outage is kept, to be handled."""
        ahead = self._ahead
        if ahead is not None and ahead.done() and (ahead.cancelled() or ahead.exception()):
            self._ahead = None

    def _abandon_read_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()  # whatever it read stays pending under this consumer: claimable
            self._ahead = None
        if self._slot_reads is not None:
            self._slot_reads.abandon()

    def _take_unacked(self) -> list[Entry]:
        acks, self._unacked = self._unacked, []
        return acks

    async def _read(self, acks: list[Entry]) -> list[Entry]:
        """XREADGROUP, preceded in the same pipeline by the XACK of ``acks`` (entries already handled)."""
        if self._slot_reads is not None:
            return await self._read_slots(self._slot_reads, acks)
        streams: dict[KeyT, StreamIdT] = {stream: ">" for stream in self._streams}
        try:
            if acks:
                async with self._redis.pipeline(transaction=False) as pipe:
                    by_stream = self._queue_acks(pipe, acks)
                    pipe.xreadgroup(
                        self._options.group,
                        self._consumer,
                        streams,
                        count=self._options.batch_size,
                        block=self._options.block_ms,
                    )
                    reply = (await pipe.execute())[-1]
                self._count_handled(by_stream)
            else:
                reply = await self._redis.xreadgroup(
                    self._options.group,
                    self._consumer,
                    streams,
                    count=self._options.batch_size,
                    block=self._options.block_ms,
                )
        except BaseException:
            self._unacked = (
                acks + self._unacked
            )  # not known to be acknowledged: again with the next read
            raise
        return entries_of(reply, self._topic_of)

    async def _read_slots(self, slot_reads: SlotReads, acks: list[Entry]) -> list[Entry]:
        """The cluster's read: ``acks`` acknowledged first (their streams may be on any node), then
        one XREADGROUP per slot."""
        if acks:
            try:
                await self._ack(acks)
            except BaseException:
                self._unacked = (
                    acks + self._unacked
                )  # not known to be acknowledged: again with the next read
                raise
        return await slot_reads.read()

    async def _handle(self, entries: list[Entry], *, defer_ack: bool = False) -> None:
        """Handle a batch and acknowledge it; ``defer_ack``: the acknowledgement may ride with the next
        read, when that read is about to be issued (the read ahead already came back)."""
        started = time.perf_counter()
        try:
            await self._call_handler(entries)
        except Exception as exc:
            if len(entries) == 1:
                if isinstance(exc, Undeliverable):
                    await self._dead_letter(entries[0], None, repr(exc))
                    return
                self._metrics.entry_failed(self._options.group, entries[0].topic)
                await self._redis.set(self._error_key(entries[0]), repr(exc)[:2000], ex=86_400)
                log.warning(
                    "entry failed; it stays pending and is retried after the claim bound",
                    extra={
                        "group": self._options.group,
                        "topic": entries[0].topic,
                        "entry": entries[0].entry_id,
                        "error": repr(exc),
                    },
                )
                return
            for entry in entries:  # isolate the entry that fails; ack the rest
                await self._handle([entry])
            return
        if defer_ack and self._read_ahead_is_full():
            self._unacked.extend(entries)
        else:
            await self._ack(entries)
        self._metrics.batch_handled(self._options.group, time.perf_counter() - started)

    async def _call_handler(self, entries: list[Entry]) -> None:
        """Call the handler, retrying in place (no ack, no delivery counted) while it says RetryLater."""
        backoff = 0.1
        while True:
            try:
                await self._handler(entries)
                return
            except RetryLater as exc:
                log.warning(
                    "handler asked to retry later",
                    extra={"group": self._options.group, "error": str(exc), "backoff_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._options.retry_backoff_max_s)

    async def _ack(self, entries: list[Entry]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            by_stream = self._queue_acks(pipe, entries)
            await pipe.execute()
        self._count_handled(by_stream)

    def _queue_acks(
        self, pipe: Pipeline | ClusterPipeline, entries: list[Entry]
    ) -> dict[str, list[str]]:
        by_stream: dict[str, list[str]] = {}
        if (
            self._topic_of is None
        ):  # every stream is its topic: the plain attribute, on the hot path
            for entry in entries:
                by_stream.setdefault(entry.topic, []).append(entry.entry_id)
        else:
            for entry in entries:
                by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self._options.group, *ids)
        return by_stream

    def _count_handled(self, by_stream: dict[str, list[str]]) -> None:
        for stream, ids in by_stream.items():
            topic = self._stream_topic[stream]
            self._metrics.entries_handled(self._options.group, topic, len(ids))

    async def _take_back_own(self) -> None:
        """Entries an earlier process of this consumer name read and never acknowledged (it was
        killed): handled first, delivery counted (an entry that kills the process every time is
        dead-lettered after ``max_deliveries`` restarts)."""
        while await self._claim_idle(set(), idle_ms=0, mine=True):
            pass

    async def _claim_idle(
        self, exclude: set[str], idle_ms: int | None = None, mine: bool = False
    ) -> int:
        """Claim entries idle past the bound (``idle_ms``, of this consumer only with ``mine``);
        dead-letter those delivered too often; handle the rest.

        ``exclude``: entries this consumer read ahead and will handle next (not idle, only waiting)."""
        idle = self._options.claim_idle_ms if idle_ms is None else idle_ms
        handled = 0
        for stream in self._streams:
            pending = await self._redis.xpending_range(
                stream,
                self._options.group,
                min="-",
                max="+",
                count=self._options.batch_size,
                idle=idle,
                consumername=self._consumer if mine else None,
            )
            if not pending:
                continue
            deliveries = {
                p["message_id"]: int(p["times_delivered"])
                for p in pending
                if not (
                    _text(p["consumer"]) == self._consumer and _text(p["message_id"]) in exclude
                )
            }
            if not deliveries:
                continue
            claimed = await self._redis.xclaim(  # entries, or None for one trimmed away
                stream, self._options.group, self._consumer, idle, list(deliveries)
            )
            topic = self._stream_topic[stream]
            alive: list[Entry] = []
            gone: list[bytes] = []
            for entry_id, fields in cast("list[tuple[bytes, dict[bytes, bytes] | None]]", claimed):
                if fields is None:  # trimmed away while pending: nothing left to process
                    gone.append(entry_id)
                    continue
                entry = stream_entry(topic, stream, entry_id, fields)
                if deliveries.get(entry_id, 0) >= self._options.max_deliveries:
                    error = await self._redis.get(self._error_key(entry))
                    await self._dead_letter(
                        entry, deliveries[entry_id], _text(error) if error else "unknown error"
                    )
                else:
                    alive.append(entry)
            if gone:
                await self._redis.xack(stream, self._options.group, *gone)
            if alive:
                self._metrics.entries_claimed(self._options.group, topic, len(alive))
                await self._handle(alive)
                handled += len(alive)
        return handled

    def _error_key(self, entry: Entry) -> str:
        return error_key(entry, self._options.group)

    async def _dead_letter(self, entry: Entry, deliveries: int | None, error: str) -> None:
        await dead_letter(
            self._redis, self._producer, self._options.group, entry, deliveries, error
        )
        self._metrics.entry_dead_lettered(self._options.group, entry.topic)


async def create_groups(
    redis: RedisClient, group: str, streams: Sequence[str], start: Literal["beginning", "now"]
) -> None:
    """Create ``group`` on each stream (and the stream) at its first entry or at its end; a group
    that exists keeps its position."""
    for stream in streams:
        try:
            await redis.xgroup_create(
                stream, group, id="0" if start == "beginning" else "$", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def error_key(entry: Entry, group: str) -> str:
    """Where the last error of an entry waits for whichever consumer dead-letters it (same slot as its stream)."""
    return "{" + entry.stream + "}:error:" + group + ":" + entry.entry_id


async def dead_letter(
    redis: RedisClient,
    producer: Producer,
    group: str,
    entry: Entry,
    deliveries: int | None,
    error: str,
) -> None:
    """Append ``entry`` to ``<topic>.dlq`` with why (``dlq_*`` fields), then acknowledge it.
    ``deliveries`` None: undeliverable (malformed), dead-lettered at its first delivery."""
    reason = "undeliverable" if deliveries is None else f"failed {deliveries} deliveries"
    fields: Fields = {name: value for name, value in entry.fields.items()}
    fields.update(
        {
            "dlq_reason": f"{reason} in group {group}: {error}",
            "dlq_error": error,
            "dlq_group": group,
            "dlq_deliveries": str(deliveries or 1),
            "dlq_source_topic": entry.stream,
            "dlq_source_entry": entry.entry_id,
        }
    )
    await producer.publish_raw(dlq_topic(entry.topic), fields)
    await redis.xack(entry.stream, group, entry.entry_id)
    await redis.delete(error_key(entry, group))
    log.error(
        "entry dead-lettered",
        extra={
            "group": group,
            "topic": entry.topic,
            "entry": entry.entry_id,
            "deliveries": deliveries,
        },
    )


def _text(value: object) -> str:
    """A reply field (bytes from a client without decode_responses) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
