"""One media_ingest instance, wired: every part built with explicit arguments, and run.

:meth:`IngestService.running` gives back the ports and repairs the recordings an earlier life of
this instance (or a dead neighbour sharing the data directory) left, then runs in one
``asyncio.TaskGroup``:

- one consumer (group ``media_ingest``) over the lifecycle topics, the media command topic and
  this instance's inbox (``dispatch``), handling the entries of different calls concurrently;
- the event publisher (bounded queue to Redis), the playback tail;
- the uploads (finished recordings into ``VOICETAP_RECORDINGS_URL``, then announced);
- the ticker (each call about once per ``INGEST_ANALYTICS_INTERVAL_SECONDS``; idle calls closed);
- the heartbeat (port leases, holder keys, orphan sweep) every third of the lease;
- the erasure consumer (group ``media_ingest.erasure:<instance>``, ``erasure``) and the key that
  tells requesters this instance takes part.

On the way out it stops taking work, finishes every call (recordings completed, ports released)
and flushes the events.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from media_ingest.call_control import CallControl
from media_ingest.calls.outputs import MediaOutputs
from media_ingest.calls.registry import CallRegistry
from media_ingest.commands import MediaCommands
from media_ingest.config import IngestConfig
from media_ingest.dispatch import Dispatcher
from media_ingest.endings import CallEndings
from media_ingest.erasure import RecordingEraser
from media_ingest.events import ErrorReporter, EventPublisher
from media_ingest.keys import GROUP, LIFECYCLE_TOPICS, inbox
from media_ingest.lifecycle import Lifecycle
from media_ingest.locks import CallLocks
from media_ingest.metrics import IngestMetrics, MediaCollector
from media_ingest.ownership import Ownership
from media_ingest.ports import PortAllocator
from media_ingest.protocol.payload_table import PayloadTable
from media_ingest.recording.spool import Spool
from media_ingest.recovery import Recovery
from media_ingest.resumption import Resumption
from media_ingest.routing import Router
from media_ingest.streams import StreamCalls
from media_ingest.takeover import Takeover
from media_ingest.timers import heartbeat, take_over_silent, tick
from media_ingest.tokens import StreamTokens
from media_ingest.transports.playback import PlaybackRouter
from media_ingest.uploads import SpoolCollector, Uploads
from voicetap_common.command_runner import CommandRunner
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_common.recordings_store import RecordingsStore
from voicetap_common.serving import WorkFailure, guarded
from voicetap_sdk.commands import MEDIA_ACTIONS
from voicetap_sdk.consumer import ConsumerOptions, StreamConsumer
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient, ping
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import ERASURE_PROGRESS, MEDIA_ANALYTICS, MEDIA_AUDIO, MEDIA_COMMANDS

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx

log = logging.getLogger("voicetap.media_ingest")

BLOCK_MS = 1000
STOP_SECONDS = 5.0  # for the loops to finish their batch, then for the events to flush
SHUTDOWN_SECONDS = 10.0  # for every call to be finished
ERASURE_BATCH_SIZE = 10
UPLOAD_STOP_SECONDS = 10.0  # for the finished recordings to be stored and announced


class IngestService:
    def __init__(
        self,
        config: IngestConfig,
        *,
        redis: RedisClient,
        store: RecordingsStore,
        client: "AsyncTelnyx | None",
        owns_client: bool,
    ) -> None:
        """``client`` None: TELNYX_API_KEY is not set (no fork or stream can start);
        ``owns_client``: closed when the service stops."""
        c = config
        self.instance = c.instance
        self.data_dir = c.data_dir
        self._config = c
        self._heartbeat_period = max(c.ports.lease_seconds / 3, 0.2)
        self.redis = redis
        self.client = client
        self._own_client = owns_client
        self.prometheus = CollectorRegistry()
        self.metrics = metrics = IngestMetrics(self.prometheus)
        producer = Producer(self.redis, c.topics.maxlen, c.topics.partitions)
        self.publisher = EventPublisher(
            self.redis,
            producer,
            metrics,
            queue_size=c.topics.event_queue,
            maxlens={
                MEDIA_ANALYTICS: c.topics.analytics_maxlen,
                MEDIA_AUDIO: c.topics.audio_maxlen,
            },
            default_maxlen=c.topics.maxlen,
        )
        errors = ErrorReporter(self.publisher, self.instance)
        payload_types = PayloadTable(c.recording.dynamic_payload_types)
        self.calls = CallRegistry(
            c.data_dir,
            instance=self.instance,
            outputs=MediaOutputs(
                self.publisher,
                sample_rate=c.recording.sample_rate,
                publish_audio=c.recording.publish_audio,
            ),
            errors=errors,
            payload_types=payload_types,
            sample_rate=c.recording.sample_rate,
            jitter_ms=c.recording.jitter_ms,
            interval=c.recording.interval,
        )
        self.allocator = PortAllocator(
            self.redis,
            bind_host=c.ports.bind_host,
            public_host=c.targets.public_host,
            ports=c.ports.ports,
            lease_seconds=c.ports.lease_seconds,
            instance=self.instance,
        )
        self.uploads = Uploads(
            Spool(c.data_dir),
            store,
            self.publisher,
            self.redis,
            instance=self.instance,
            spool_bound=c.recording.spool_bound,
            concurrency=c.recording.upload_concurrency,
        )
        self.ownership = Ownership(
            self.redis,
            self.allocator,
            instance=self.instance,
            lease_seconds=c.ports.lease_seconds,
            held_calls=self.calls.calls,
        )
        tokens = StreamTokens(self.redis)
        locks = CallLocks(self.calls.__contains__)
        self._publishing_stop = asyncio.Event()
        self._uploads_stop = asyncio.Event()
        self.endings = CallEndings(
            self.calls,
            self.allocator,
            self.ownership,
            self.uploads,
            self.publisher,
            metrics,
            c.timeouts,
        )
        commands = MediaCommands(
            CallControl(self.client, metrics),
            self.calls,
            self.allocator,
            self.ownership,
            tokens,
            self.endings,
            locks,
            errors,
            metrics,
            c.targets,
        )
        self.resumption = Resumption(
            self.redis,
            self.calls,
            commands,
            self.ownership,
            self.endings,
            instance=self.instance,
            data_dir=c.data_dir,
        )
        router = Router(
            self.redis,
            metrics,
            instance=self.instance,
            lease_seconds=c.ports.lease_seconds,
            alive_seconds=c.ports.takeover_seconds,
            holds=self.calls.__contains__,
        )
        lifecycle = Lifecycle(
            self.redis,
            self.calls,
            commands,
            self.endings,
            tokens,
            locks,
            errors,
            router.spill,
            mode=c.mode,
        )
        self.dispatcher = Dispatcher(
            self.redis,
            router,
            lifecycle,
            CommandRunner(
                self.redis,
                producer,
                commands.execute,
                executed_by=f"media_ingest:{self.instance}",
                actions=MEDIA_ACTIONS,
            ),
        )
        self.takeover = Takeover(
            self.redis,
            self.calls,
            commands,
            self.ownership,
            self.endings,
            locks,
            self.publisher,
            self.dispatcher,
            instance=self.instance,
            after_seconds=c.ports.takeover_seconds,
        )
        self._liveness_period = c.ports.takeover_seconds / 5
        self.recovery = Recovery(
            self.redis,
            self.calls,
            self.allocator,
            self.uploads,
            instance=self.instance,
            data_dir=c.data_dir,
        )
        self.playback = PlaybackRouter(self.redis, block_ms=BLOCK_MS)
        self.streams = StreamCalls(
            self.calls, tokens, self.ownership, locks, self.playback, payload_types,
            self.publisher, errors, metrics,
        )  # fmt: skip
        consumer_metrics = PrometheusConsumerMetrics(self.prometheus)
        self.eraser = RecordingEraser(
            self.redis,
            producer,
            self.calls,
            self.endings,
            spool=self.uploads.spool,
            store=self.uploads.store,
            instance=self.instance,
        )
        self.erasure_consumer = StreamConsumer(
            self.redis,
            producer,
            ConsumerOptions(
                group=self.eraser.part,
                topics=(ERASURE_PROGRESS,),
                consumer=self.instance,
                start="now",
                batch_size=ERASURE_BATCH_SIZE,
                block_ms=BLOCK_MS,
            ),
            self.eraser.handle,
            consumer_metrics,
        )
        self.consumer = StreamConsumer(
            self.redis,
            producer,
            ConsumerOptions(
                group=GROUP,
                topics=(*LIFECYCLE_TOPICS, MEDIA_COMMANDS, inbox(self.instance)),
                consumer=self.instance,
                block_ms=BLOCK_MS,
                partitions=c.topics.partitions,
            ),
            self.dispatcher.handle,
            consumer_metrics,
        )
        self.prometheus.register(
            MediaCollector(
                lambda: len(self.calls),
                self.calls.leg_counts,
                lambda: (self.allocator.in_use, self.allocator.capacity),
            )
        )
        self.prometheus.register(SpoolCollector(self.uploads))
        self.playback_ready = asyncio.Event()

    async def ready(self) -> dict[str, bool]:
        """Redis answers, and the spool of recordings waiting for the store is within its bound."""
        return {
            "redis": await ping(self.redis, self._config.redis_timeout),
            "recordings_spool": self.uploads.within_bound(),
        }

    @contextlib.asynccontextmanager
    async def running(self, failure: WorkFailure) -> AsyncIterator[None]:
        """Start (recovery first), run every loop until the block exits, then stop cleanly; a loop
        that fails for good is reported to ``failure`` (which stops the process)."""
        try:
            await self._start()
            consuming = asyncio.Event()  # set: stop taking work
            async with asyncio.TaskGroup() as group:
                publishing = group.create_task(
                    guarded(self.publisher.run(self._publishing_stop), failure)
                )
                uploading = group.create_task(
                    guarded(self.uploads.run(self._uploads_stop), failure)
                )
                loops = [
                    group.create_task(guarded(self.consumer.run(consuming), failure)),
                    group.create_task(
                        guarded(self.playback.run(consuming, self.playback_ready), failure)
                    ),
                    group.create_task(guarded(tick(self.calls, self.endings, consuming), failure)),
                    group.create_task(
                        guarded(
                            heartbeat(
                                self.ownership,
                                self.recovery,
                                self.endings,
                                consuming,
                                self._liveness_period,
                                self._heartbeat_period,
                            ),
                            failure,
                        )
                    ),
                    group.create_task(
                        guarded(
                            take_over_silent(self.takeover, consuming, self._liveness_period),
                            failure,
                        )
                    ),
                    group.create_task(guarded(self.erasure_consumer.run(consuming), failure)),
                    group.create_task(
                        guarded(self.eraser.attend(consuming, self._heartbeat_period), failure)
                    ),
                ]
                try:
                    yield
                finally:
                    consuming.set()
                    await self._stop(loops, uploading, publishing)
        finally:
            if self.client is not None and self._own_client:
                await self.client.close()
            await self.redis.aclose()
        log.info("media ingest stopped", extra={"instance": self.instance})

    async def _start(self) -> None:
        if self.client is None:
            log.warning("TELNYX_API_KEY is not set: media ingest cannot start forks or streams")
        else:
            self.client.calls.actions  # noqa: B018 - the SDK loads its resources lazily (0.7 s): not during a call
        await self.ownership.beat()  # first: no takeover of this instance's calls succeeds after it
        resumed = await self.resumption.resume_own_calls()  # before its ports are freed
        reclaimed = await self.recovery.reclaim_own_leases()
        await self.ownership.heartbeat()
        recovered = await self.recovery.recover_orphans()
        await self.erasure_consumer.ensure_groups()  # before the participant key says "wait for me"
        erased = await self.eraser.sweep_tombstoned()
        log.info(
            "media ingest starting",
            extra={
                "instance": self.instance,
                "mode": self._config.mode,
                "ports": f"{self._config.ports.ports.start}-{self._config.ports.ports.stop - 1}",
                "resumed_calls": len(resumed),
                "reclaimed_port_pairs": reclaimed,
                "recovered_recordings": len(recovered),
                "erased_recordings": erased,
            },
        )

    async def _stop(
        self,
        loops: list[asyncio.Task[None]],
        uploading: asyncio.Task[None],
        publishing: asyncio.Task[None],
    ) -> None:
        """Stop taking work, finish every call (recordings completed, ports released), upload what
        the store takes in time (the rest stays spooled for the next start), flush events."""
        _, pending = await asyncio.wait(loops, timeout=STOP_SECONDS)
        for (
            task
        ) in pending:  # e.g. a batch waiting on the Telnyx API: left unacknowledged, claimed later
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self.eraser.leave()
        try:
            await asyncio.wait_for(self.endings.shutdown(), SHUTDOWN_SECONDS)
        except REDIS_UNAVAILABLE as exc:
            log.error("could not finish every call cleanly", extra={"error": repr(exc)})
        self._uploads_stop.set()
        _, uploads_left = await asyncio.wait({uploading}, timeout=UPLOAD_STOP_SECONDS)
        if uploads_left:
            log.warning(
                "recordings still spooled at exit are uploaded on the next start",
                extra={"spooled": self.uploads.spool.stats()[0]},
            )
            uploading.cancel()
        self._publishing_stop.set()
        _, unfinished = await asyncio.wait({publishing}, timeout=STOP_SECONDS)
        if unfinished:
            log.warning(
                "media events still queued at exit were dropped",
                extra={"queued": self.publisher.queued},
            )
            publishing.cancel()
