"""One media_ingest instance, wired: every part built with explicit arguments, and run.

:meth:`IngestService.running` gives back the ports and repairs the recordings an earlier life of
this instance (or a dead neighbour sharing the data directory) left, then runs in one
``asyncio.TaskGroup``:

- one consumer (group ``media_ingest``) over the lifecycle topics, the media command topic and
  this instance's inbox (``dispatch``), handling the entries of different calls concurrently;
- the event publisher (bounded queue to Redis), the playback tail;
- the ticker (each call about once per ``INGEST_ANALYTICS_INTERVAL_SECONDS``; idle calls closed);
- the heartbeat (port leases, holder keys, orphan sweep) every third of the lease.

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
from media_ingest.commands import MediaCommands, MediaTargets
from media_ingest.dispatch import Dispatcher
from media_ingest.endings import CallEndings, Timeouts
from media_ingest.events import ErrorReporter, EventPublisher
from media_ingest.keys import GROUP, LIFECYCLE_TOPICS, inbox
from media_ingest.lifecycle import Lifecycle
from media_ingest.locks import CallLocks
from media_ingest.metrics import IngestMetrics, MediaCollector
from media_ingest.ownership import Ownership
from media_ingest.ports import PortAllocator
from media_ingest.protocol.codecs import parse_payload_map
from media_ingest.protocol.payload_table import PayloadTable
from media_ingest.recovery import Recovery
from media_ingest.routing import Router
from media_ingest.settings import IngestSettings
from media_ingest.streams import StreamCalls
from media_ingest.timers import heartbeat, tick
from media_ingest.tokens import StreamTokens
from media_ingest.transports.playback import PlaybackRouter
from voicetap_common.call_control import telnyx_client
from voicetap_common.command_runner import CommandRunner
from voicetap_common.commands import MEDIA_ACTIONS, MEDIA_COMMANDS
from voicetap_common.consumer import (
    ConsumerMetrics,
    ConsumerOptions,
    StreamConsumer,
    default_consumer_name,
)
from voicetap_common.media_events import MEDIA_ANALYTICS, MEDIA_AUDIO
from voicetap_common.redis_client import REDIS_UNAVAILABLE, connect, ping
from voicetap_common.streams import Producer

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx

log = logging.getLogger("voicetap.media_ingest")

BLOCK_MS = 1000
STOP_SECONDS = 5.0  # for the loops to finish their batch, then for the events to flush
SHUTDOWN_SECONDS = 10.0  # for every call to be finished


class IngestService:
    def __init__(self, settings: IngestSettings, *, client: "AsyncTelnyx | None" = None) -> None:
        """``client``: the Telnyx SDK client to use (one is made from the settings otherwise)."""
        s = settings
        self.instance = s.ingest_instance_id or default_consumer_name()
        self.data_dir = s.voicetap_data_dir
        self._mode = s.ingest_mode
        self._ports = s.ingest_rtp_ports
        self._redis_timeout = s.redis_timeout_seconds
        self._heartbeat_period = max(s.ingest_port_lease_seconds / 3, 0.2)
        self.redis = connect(s, blocking_ms=BLOCK_MS)
        self.prometheus = CollectorRegistry()
        self.metrics = metrics = IngestMetrics(self.prometheus)
        self._own_client = client is None and s.telnyx_api_key is not None
        self.client = telnyx_client(s) if self._own_client else client
        producer = Producer(self.redis, s.topic_maxlen, s.topic_partitions)
        self.publisher = EventPublisher(
            self.redis,
            producer,
            metrics,
            queue_size=s.ingest_event_queue,
            maxlens={
                MEDIA_ANALYTICS: s.ingest_analytics_maxlen,
                MEDIA_AUDIO: s.ingest_audio_maxlen,
            },
            default_maxlen=s.topic_maxlen,
        )
        errors = ErrorReporter(self.publisher, self.instance)
        dynamic = s.ingest_dynamic_payload_types
        payload_types = PayloadTable(parse_payload_map(dynamic) if dynamic else None)
        self.calls = CallRegistry(
            s.voicetap_data_dir,
            instance=self.instance,
            outputs=MediaOutputs(
                self.publisher,
                sample_rate=s.ingest_recording_rate,
                publish_audio=s.ingest_publish_audio,
            ),
            errors=errors,
            payload_types=payload_types,
            sample_rate=s.ingest_recording_rate,
            jitter_ms=s.ingest_jitter_ms,
            interval=s.ingest_analytics_interval_seconds,
        )
        self.allocator = PortAllocator(
            self.redis,
            bind_host=s.ingest_rtp_host,
            public_host=s.ingest_public_host,
            ports=s.rtp_port_range(),
            lease_seconds=s.ingest_port_lease_seconds,
            instance=self.instance,
        )
        self.ownership = Ownership(
            self.redis,
            self.allocator,
            instance=self.instance,
            lease_seconds=s.ingest_port_lease_seconds,
            held_calls=lambda: [call.call_control_id for call in self.calls.calls()],
        )
        tokens = StreamTokens(self.redis)
        locks = CallLocks(self.calls.__contains__)
        self._publishing_stop = asyncio.Event()
        self.endings = CallEndings(
            self.calls,
            self.allocator,
            self.ownership,
            self.publisher,
            metrics,
            Timeouts(s.ingest_media_timeout_seconds, s.ingest_paused_timeout_seconds),
            self._publishing_stop,
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
            MediaTargets(
                public_host=s.ingest_public_host,
                public_url=s.ingest_public_url,
                stream_codec=s.ingest_stream_codec,
                bidirectional_mode=s.ingest_stream_bidirectional_mode,
            ),
        )
        lifecycle = Lifecycle(
            self.redis,
            self.calls,
            commands,
            self.endings,
            tokens,
            locks,
            errors,
            mode=s.ingest_mode,
        )
        self.dispatcher = Dispatcher(
            Router(
                self.redis,
                metrics,
                instance=self.instance,
                lease_seconds=s.ingest_port_lease_seconds,
                holds=self.calls.__contains__,
            ),
            lifecycle,
            CommandRunner(
                self.redis,
                producer,
                commands.execute,
                executed_by=f"media_ingest:{self.instance}",
                actions=MEDIA_ACTIONS,
            ),
        )
        self.recovery = Recovery(
            self.redis,
            self.calls,
            self.allocator,
            self.publisher,
            instance=self.instance,
            data_dir=s.voicetap_data_dir,
        )
        self.playback = PlaybackRouter(self.redis, block_ms=BLOCK_MS)
        self.streams = StreamCalls(
            self.calls, tokens, self.ownership, locks, self.playback, payload_types,
            self.publisher, errors, metrics,
        )  # fmt: skip
        self.consumer = StreamConsumer(
            self.redis,
            producer,
            ConsumerOptions(
                group=GROUP,
                topics=(*LIFECYCLE_TOPICS, MEDIA_COMMANDS, inbox(self.instance)),
                consumer=self.instance,
                block_ms=BLOCK_MS,
                partitions=s.topic_partitions,
            ),
            self.dispatcher.handle,
            ConsumerMetrics(self.prometheus),
        )
        self.prometheus.register(
            MediaCollector(
                lambda: len(self.calls),
                self.calls.leg_counts,
                lambda: (self.allocator.in_use, self.allocator.capacity),
            )
        )
        self.playback_ready = asyncio.Event()

    async def ready(self) -> dict[str, bool]:
        return {"redis": await ping(self.redis, self._redis_timeout)}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start (recovery first), run every loop until the block exits, then stop cleanly."""
        try:
            await self._start()
            consuming = asyncio.Event()  # set: stop taking work
            async with asyncio.TaskGroup() as group:
                publishing = group.create_task(self.publisher.run(self._publishing_stop))
                loops = [
                    group.create_task(self.consumer.run(consuming)),
                    group.create_task(self.playback.run(consuming, self.playback_ready)),
                    group.create_task(tick(self.calls, self.endings, consuming)),
                    group.create_task(
                        heartbeat(self.ownership, self.recovery, consuming, self._heartbeat_period)
                    ),
                ]
                try:
                    yield
                finally:
                    consuming.set()
                    await self._stop(loops, publishing)
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
        reclaimed = await self.recovery.reclaim_own_leases()
        await self.ownership.heartbeat()
        recovered = await self.recovery.recover_orphans()
        log.info(
            "media ingest starting",
            extra={
                "instance": self.instance,
                "mode": self._mode,
                "ports": self._ports,
                "reclaimed_port_pairs": reclaimed,
                "recovered_recordings": len(recovered),
            },
        )

    async def _stop(self, loops: list[asyncio.Task[None]], publishing: asyncio.Task[None]) -> None:
        """Stop taking work, finish every call (recordings completed, ports released), flush events."""
        _, pending = await asyncio.wait(loops, timeout=STOP_SECONDS)
        for (
            task
        ) in pending:  # e.g. a batch waiting on the Telnyx API: left unacknowledged, claimed later
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        try:
            await asyncio.wait_for(self.endings.shutdown(), SHUTDOWN_SECONDS)
        except REDIS_UNAVAILABLE as exc:
            log.error("could not finish every call cleanly", extra={"error": repr(exc)})
        self._publishing_stop.set()
        _, unfinished = await asyncio.wait({publishing}, timeout=STOP_SECONDS)
        if unfinished:
            log.warning(
                "media events still queued at exit were dropped",
                extra={"queued": self.publisher.queued},
            )
            publishing.cancel()
