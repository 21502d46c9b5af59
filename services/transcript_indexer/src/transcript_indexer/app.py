"""The indexer as one ASGI app: the query API, and in its lifespan the group's consumers, the
command consumer, the completion sweeper, the erasure consumer and (with
``VOICETAP_RETENTION_DAYS``) the retention sweeper.

``create_app`` takes plain, typed arguments (``main`` reads them from the settings) and builds
every object without I/O. The lifespan starts one task in a ``TaskGroup`` with one stop event:
it opens the database (waiting out an outage, so that a stop is never held up by it; meanwhile
``/readyz`` says the database is down and the API answers 503), then runs the loops. At shutdown
the loops get ``STOP_GRACE_SECONDS`` to finish their batch; one still waiting (for a database
that is down) is cancelled, its batch left unacknowledged for redelivery.
"""

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from transcript_indexer.completion import Completer
from transcript_indexer.consumer import Indexer, consumer_names
from transcript_indexer.control import EXECUTED_BY, TelnyxCommands, TranscriptionStarter
from transcript_indexer.erasure import GROUP as ERASURE_GROUP
from transcript_indexer.erasure import TOPICS as ERASURE_TOPICS
from transcript_indexer.erasure import Eraser
from transcript_indexer.live import LiveFeed
from transcript_indexer.retention import RetentionSweeper
from transcript_indexer.routes import LinkOptions, api_routes
from transcript_indexer.storage import open_when_available
from transcript_indexer.storage.base import Storage
from voicetap_common.access import Access
from voicetap_common.access_http import AccessGuard, refused_counter
from voicetap_common.command_runner import CommandRunner
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_common.erasure import ErasureOutcome, new_request_id, request_erasure
from voicetap_common.http import operational_routes
from voicetap_common.recordings_http import RecordingHandler, stored_recording
from voicetap_common.recordings_store import RecordingsStore
from voicetap_common.serving import WorkFailure, guarded
from voicetap_sdk.commands import (
    TRANSCRIPTION_ACTIONS,
    TranscriptionEngine,
    TranscriptionTracks,
)
from voicetap_sdk.consumer import ConsumerOptions, StreamConsumer
from voicetap_sdk.erasure_events import ErasureRequest
from voicetap_sdk.redis_client import connect, ping
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import TRANSCRIPTION_COMMANDS

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx

log = logging.getLogger("voicetap.transcript_indexer")

STOP_GRACE_SECONDS = 5.0
COMMAND_BATCH_SIZE = 50
ERASURE_BATCH_SIZE = 10


@dataclasses.dataclass(frozen=True, slots=True)
class ErasureOptions:
    """Erasure and retention: the tombstones' lifetime, how long ``DELETE /calls/{id}`` waits, and
    ``VOICETAP_RETENTION_DAYS`` (None: keep forever) with its sweep's interval and batch."""

    tombstone_seconds: int = 30 * 86_400
    timeout_seconds: float = 30.0
    retention: timedelta | None = None
    retention_interval_seconds: float = 60.0
    retention_batch_size: int = 100


@dataclasses.dataclass(frozen=True, slots=True)
class AutoTranscription:
    """``INDEXER_AUTO_TRANSCRIBE``: what ``transcription_start`` asks for on every answered call."""

    engine: TranscriptionEngine
    tracks: TranscriptionTracks


def recording_route(stored: RecordingHandler) -> Callable[[Request], Awaitable[Response]]:
    async def recording(request: Request) -> Response:
        return await stored(request, request.path_params["call_control_id"])

    return recording


def create_app(
    *,
    storage: Storage,
    redis_url: str,
    redis_cluster: bool,
    redis_timeout_seconds: float,
    reading: ConsumerOptions,
    consumers: int,
    topic_maxlen: int,
    settle_seconds: float,
    live_maxlen: int,
    live_ttl_seconds: int,
    sse_keepalive_seconds: float,
    telnyx_client: Callable[[], "AsyncTelnyx"],
    auto_transcription: AutoTranscription | None,
    access: Access,
    public_ingest_url: str = "",
    public_indexer_url: str = "",
    failure: WorkFailure,
    console_url: str | None = None,
    erasure: ErasureOptions | None = None,
    recordings: RecordingsStore,
    registry: CollectorRegistry | None = None,
) -> Starlette:
    """The indexer over ``storage`` (not yet opened).

    ``reading`` is how the group reads the topics, its ``consumer`` the process's consumer name
    (``consumers`` of them, see :func:`~transcript_indexer.consumer.consumer_names`);
    ``telnyx_client`` makes the SDK client on the first command; ``recordings`` is the store
    ``GET /calls/{id}/recording.wav`` answers from (the same one the ingest instances write).
    """
    registry = registry or CollectorRegistry()
    keepalive_ms = int(sse_keepalive_seconds * 1000)
    redis = connect(
        redis_url,
        cluster=redis_cluster,
        timeout_seconds=redis_timeout_seconds,
        blocking_ms=max(reading.block_ms, keepalive_ms),
    )
    partitions = reading.partitions
    producer = Producer(redis, topic_maxlen, partitions)
    live = LiveFeed(redis, live_maxlen, live_ttl_seconds)
    commands = TelnyxCommands(telnyx_client, registry)
    starter = (
        TranscriptionStarter(
            commands, redis, producer, auto_transcription.engine, auto_transcription.tracks
        )
        if auto_transcription is not None
        else None
    )
    indexer = Indexer(storage, redis, live, starter, registry)
    consumer_metrics = PrometheusConsumerMetrics(registry)
    names = consumer_names(reading.consumer, consumers)
    group_consumers = [
        StreamConsumer(
            redis,
            producer,
            dataclasses.replace(reading, consumer=name),
            indexer.handle,
            consumer_metrics,
        )
        for name in names
    ]
    runner = CommandRunner(
        redis, producer, commands.execute, executed_by=EXECUTED_BY, actions=TRANSCRIPTION_ACTIONS
    )
    command_consumer = StreamConsumer(
        redis,
        producer,
        dataclasses.replace(
            reading,
            topics=[TRANSCRIPTION_COMMANDS],
            consumer=names[0],
            start="beginning",
            batch_size=COMMAND_BATCH_SIZE,
        ),
        runner.handle,
        consumer_metrics,
    )
    completer = Completer(storage, redis, live, settle_seconds, topic_maxlen, partitions, registry)
    erasure = erasure or ErasureOptions()
    eraser = Eraser(storage, redis, live, producer, erasure.tombstone_seconds, registry)
    erasure_consumer = StreamConsumer(
        redis,
        producer,
        dataclasses.replace(
            reading,
            group=ERASURE_GROUP,
            topics=ERASURE_TOPICS,
            consumer=names[0],
            start="beginning",
            batch_size=ERASURE_BATCH_SIZE,
        ),
        eraser.handle,
        consumer_metrics,
    )
    sweeper = (
        RetentionSweeper(
            storage,
            redis,
            producer,
            retention=erasure.retention,
            interval_seconds=erasure.retention_interval_seconds,
            batch_size=erasure.retention_batch_size,
            holder=names[0],
            request_window_seconds=erasure.tombstone_seconds,
            registry=registry,
        )
        if erasure.retention is not None
        else None
    )

    async def erase_call(call_control_id: str) -> ErasureOutcome:
        request = ErasureRequest(
            id=new_request_id(), occurred_at=datetime.now(UTC), call_control_id=call_control_id
        )
        return await request_erasure(
            redis,
            producer,
            request,
            tombstone_seconds=erasure.tombstone_seconds,
            timeout_seconds=erasure.timeout_seconds,
        )

    opened = asyncio.Event()  # the database is open and migrated

    async def work(stop: asyncio.Event) -> None:
        if not await open_when_available(storage, stop):
            return
        opened.set()
        async with asyncio.TaskGroup() as loops:
            for consumer in group_consumers:
                loops.create_task(consumer.run(stop))
            loops.create_task(command_consumer.run(stop))
            loops.create_task(completer.run(stop))
            loops.create_task(erasure_consumer.run(stop))
            if sweeper is not None:
                loops.create_task(sweeper.run(stop))

    async def database_answers() -> bool:
        if not opened.is_set():
            return False
        try:
            return await asyncio.wait_for(storage.ping(), redis_timeout_seconds)
        except TimeoutError:
            return False

    async def readiness() -> dict[str, bool]:
        database, redis_ok = await asyncio.gather(
            database_answers(), ping(redis, redis_timeout_seconds)
        )
        return {"database": database, "redis": redis_ok}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info(
            "transcript indexer starting",
            extra={"consumer": names[0], "auto_transcribe": starter is not None},
        )
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                running = group.create_task(guarded(work(stop), failure))
                try:
                    yield
                finally:
                    stop.set()
                    if opened.is_set():  # else no batch is in flight, only the opening
                        await asyncio.wait([running], timeout=STOP_GRACE_SECONDS)
                    running.cancel()  # e.g. a batch waiting for a database that is down
        finally:
            await commands.close()
            await redis.aclose()
            await storage.close()
            log.info("transcript indexer stopped")

    return Starlette(
        routes=[
            Route(
                "/calls/{call_control_id:path}/recording.wav",
                recording_route(stored_recording(recordings)),
                methods=["GET"],
            ),
            *api_routes(
                storage,
                redis,
                registry,
                keepalive_ms,
                erase_call,
                LinkOptions(access.link_key, public_ingest_url, public_indexer_url),
            ),
            *operational_routes(registry, readiness, service="indexer", console_url=console_url),
        ],
        middleware=[
            Middleware(
                AccessGuard,
                tokens=access.tokens,
                link_key=access.link_key,
                metrics_token=access.metrics_token,
                refused=refused_counter(registry),
                service="indexer",
            )
        ],
        lifespan=lifespan,
    )
