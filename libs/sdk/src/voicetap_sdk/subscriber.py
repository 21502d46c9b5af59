"""A consumer of voicetap topics in a few lines: handlers per topic, on the services' own consumer.

``Subscriber`` wires handlers to :class:`~voicetap_sdk.consumer.StreamConsumer`, the consumer every
voicetap service runs, so it has its guarantees (docs/CONSUMERS.md):

- an entry is acknowledged only after its handler returned;
- a handler that raises gets the entry again (after ``claim_idle_ms``), and after
  ``max_deliveries`` deliveries the entry goes to ``<topic>.dlq`` with the error, while the rest
  flows; an entry whose ``event`` is not its topic's model goes there at once;
- entries a dead consumer of the group held are claimed after ``claim_idle_ms``;
- partitions (``TOPIC_PARTITIONS``) and Redis Cluster are read without the handler knowing;
- :meth:`Subscriber.run` stops on SIGINT or SIGTERM once the handlers in flight returned and their
  entries were acknowledged.

A batch that fails is retried entry by entry (so one poison entry does not hold the rest back);
a handler is still called once per delivery of an entry.
"""

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from redis.typing import EncodableT

from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.client import publish_command
from voicetap_sdk.commands import CallCommand
from voicetap_sdk.connection import Connection
from voicetap_sdk.consumer import ConsumerMetrics, ConsumerOptions, StreamConsumer, Undeliverable
from voicetap_sdk.decoding import UndecodableEntry, decode, has_model
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.streams import Entry, Fields

log = logging.getLogger("voicetap.sdk")

EventHandler = Callable[[Any], Awaitable[None]] | Callable[[Any, Entry], Awaitable[None]]
"""An ``async def`` taking the topic's typed event (the raw :class:`Entry` with ``raw=True``),
and optionally the entry as well: ``(event, entry)`` (where it came from: ``entry.entry_id``,
``entry.stream``)."""
H = TypeVar("H", bound=EventHandler)
T = TypeVar("T", bound=Callable[[], Awaitable[None]])


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Callable[..., Awaitable[None]]
    raw: bool
    with_entry: bool  # the handler takes (event, entry)


class Subscriber:
    def __init__(
        self,
        redis_url: str,
        *,
        group: str,
        start: Literal["beginning", "now"] = "beginning",
        consumer: str = "",
        partitions: int | None = None,
        cluster: bool | None = None,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        claim_interval_s: float = 5.0,
        max_deliveries: int = 5,
        maxlen: int | None = None,
        timeout_seconds: float = 5.0,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        """``group``: the consumer group (copies with the same group share the work); ``start``:
        where a new group begins, at every entry the topics still hold or at the next one written
        (an existing group keeps its position); ``partitions``: the deployment's
        ``TOPIC_PARTITIONS`` (None reads that variable); ``cluster``: None asks the server;
        ``maxlen``: the bound of the topics :meth:`publish_once` writes (None: ``TOPIC_MAXLEN``)."""
        if start not in ("beginning", "now"):
            raise ValueError(f"start={start!r}: 'beginning' or 'now'")
        self.group = group
        self._start: Literal["beginning", "now"] = start
        self._consumer_name = consumer
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._claim_interval_s = claim_interval_s
        self._max_deliveries = max_deliveries
        self._metrics = metrics
        self._connection = Connection(
            redis_url,
            cluster=cluster,
            partitions=partitions,
            maxlen=maxlen,
            timeout_seconds=timeout_seconds,
            blocking_ms=block_ms,
        )
        self._routes: dict[str, _Route] = {}
        self._timers: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        # What each handler did in a batch that failed, while the consumer retries it one by one.
        self._outcomes: dict[tuple[str, str], Exception | None] = {}
        self._batch: list[tuple[str, str]] = []  # the entries those outcomes are of

    @property
    def topics(self) -> list[str]:
        return list(self._routes)

    def on(self, topic: str, *, raw: bool = False) -> Callable[[H], H]:
        """Register the decorated handler for ``topic`` (one per topic). It receives the topic's
        typed event (``voicetap_sdk.decoding.event_model``), or the :class:`Entry` when ``raw``: a
        topic outside voicetap's catalogue has no model, so its handler must ask for the entry. A
        handler of two required parameters receives ``(event, entry)``."""
        if not raw and not has_model(topic):
            raise ValueError(
                f"{topic}: not a topic of voicetap's catalogue, so its entries have no model; "
                "register the handler with raw=True to receive the entry's plain fields"
            )
        if topic in self._routes:
            raise ValueError(f"{topic}: a handler is registered already")

        def register(handler: H) -> H:
            with_entry = len(_required_positional(handler)) == 2
            self._routes[topic] = _Route(handler, raw, with_entry)
            return handler

        return register

    def every(self, seconds: float) -> Callable[[T], T]:
        """Run the decorated ``async def`` every ``seconds`` beside the handlers while
        :meth:`run` or :meth:`serve` runs (not in :meth:`process_available`): timers such as
        sending what fell due. One that raises is logged and runs again at its next time."""
        if seconds <= 0:
            raise ValueError(f"every({seconds}): a period above 0 seconds")

        def register(job: T) -> T:
            self._timers.append((seconds, job))
            return job

        return register

    async def publish_once(
        self,
        topic: str,
        *,
        key: str,
        fields: Mapping[str, EncodableT],
        window_seconds: int = 7 * 86_400,
    ) -> str | None:
        """Append ``fields`` to ``topic`` unless ``key`` was published there within the window:
        the mark and the entry are written by one script (SET NX + XADD, one hash slot), so a
        redelivered entry never produces a second effect. The entry carries ``id`` = ``key``
        unless ``fields`` has one. Returns the new entry's id, or None when ``key`` was there."""
        record: Fields = {"id": key}
        for name, value in fields.items():
            record[name] = value
        producer = await self._connection.producer()
        return await producer.publish_fields_once(topic, key, record, window_seconds)

    async def send_command(self, command: CallCommand) -> bool:
        """Publish a Call Control command on its topic, once (keyed by its id), without waiting
        for its outcome (``voicetap.command.result``; ``Client.command`` waits); False when its
        id was sent already."""
        return await publish_command(await self._connection.producer(), command) is not None

    async def redis(self) -> RedisClient:
        """The subscriber's Redis client, for state of your own. On Redis Cluster a script or
        transaction must keep its keys in one hash slot (give them a topic's name as hash tag)."""
        return await self._connection.client()

    def run(self) -> None:
        """Consume until SIGINT or SIGTERM, then return once the handlers in flight have returned
        and their entries were acknowledged."""
        asyncio.run(self._run_until_signalled())

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set (then as :meth:`run`); Redis outages are waited out."""
        try:
            if await self._open(stop):
                consumer = await self._consumer(self._block_ms, read_ahead=True)
                async with asyncio.TaskGroup() as tasks:
                    for seconds, job in self._timers:
                        tasks.create_task(_repeat(job, seconds, stop))
                    await consumer.run(stop)
        finally:
            await self._connection.close()

    async def process_available(self) -> int:
        """Handle what there is now (entries idle past ``claim_idle_ms``, then new entries) and
        return how many entries were read or claimed (dead-lettered ones included): for batch
        jobs, cron and tests."""
        consumer = await self._consumer(1, read_ahead=False)
        await consumer.ensure_groups()
        handled = 0
        while count := await consumer.run_once():
            handled += count
        await consumer.finish()
        return handled

    async def close(self) -> None:
        await self._connection.close()

    async def _run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.serve(stop)

    async def _open(self, stop: asyncio.Event) -> bool:
        """Open the client, waiting out a Redis that does not answer yet; False when stopped first."""
        backoff = Backoff("redis", log, first=0.2, cap=10.0, context={"group": self.group})
        while not stop.is_set():
            try:
                await self._connection.client()
                return True
            except REDIS_UNAVAILABLE as exc:
                await backoff.failed(exc, stop)
        return False

    async def _consumer(self, block_ms: int, *, read_ahead: bool) -> StreamConsumer:
        if not self._routes:
            raise ValueError("no handler registered: decorate one with @subscriber.on(topic)")
        options = ConsumerOptions(
            group=self.group,
            topics=list(self._routes),
            consumer=self._consumer_name,
            start=self._start,
            batch_size=self._batch_size,
            block_ms=block_ms,
            claim_idle_ms=self._claim_idle_ms,
            claim_interval_s=self._claim_interval_s,
            max_deliveries=self._max_deliveries,
            read_ahead=read_ahead,
            partitions=self._connection.partitions,
        )
        client = await self._connection.client()
        producer = await self._connection.producer()
        return StreamConsumer(client, producer, options, self._handle, self._metrics)

    async def _handle(self, entries: list[Entry]) -> None:
        """Decode the batch first (an undecodable entry is dead-lettered before any handler ran),
        then hand each entry to its topic's handler, in order.

        When a handler raises, the consumer retries the batch entry by entry (or, after
        ``RetryLater``, the whole batch in place): what each entry's handler did in the batch
        (returned, or raised) stands for that delivery, so a handler whose call returned is never
        called again for the same delivery."""
        keys = [(entry.stream, entry.entry_id) for entry in entries]
        if len(entries) == 1 and keys[0] in self._outcomes:
            failure = self._outcomes.pop(keys[0])
            if failure is not None:
                raise failure
            return
        if len(entries) > 1 and keys != self._batch:
            self._outcomes.clear()
            self._batch = keys
        calls = [(self._routes[entry.topic], entry) for entry in entries]
        try:
            arguments = [entry if route.raw else decode(entry) for route, entry in calls]
        except UndecodableEntry as exc:
            raise Undeliverable(str(exc)) from exc
        for (route, entry), argument, key in zip(calls, arguments, keys, strict=True):
            if len(entries) > 1 and key in self._outcomes and self._outcomes[key] is None:
                continue  # returned already in this batch, retried in place after a RetryLater
            try:
                await (
                    route.handler(argument, entry) if route.with_entry else route.handler(argument)
                )
            except Exception as exc:
                if len(entries) > 1:
                    self._outcomes[key] = exc
                raise
            if len(entries) > 1:
                self._outcomes[key] = None


def _required_positional(handler: Callable[..., object]) -> list[str]:
    """The parameters a call must give ``handler`` (one with a default is not counted)."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [
        name
        for name, parameter in inspect.signature(handler).parameters.items()
        if parameter.kind in positional and parameter.default is inspect.Parameter.empty
    ]


async def _repeat(job: Callable[[], Awaitable[None]], seconds: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:  # a timer's failure is its own: the handlers go on
            log.warning("timer %s failed: %r", getattr(job, "__name__", job), exc)
        await sleep_or_stop(stop, seconds)
