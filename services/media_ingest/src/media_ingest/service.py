"""One media_ingest instance: its Redis clients, calls, consumers, timers and background tasks.

``IngestService.start`` gives back the ports and repairs the recordings an earlier life of this
instance (or a dead neighbour sharing the data directory) left, then runs:

- one consumer (group ``media_ingest``) over the lifecycle topics, the media command topic and
  this instance's inbox, handling the entries of different calls concurrently;
- the event publisher (bounded queue to Redis), the playback tail;
- the ticker (each call about once per ``INGEST_ANALYTICS_INTERVAL_SECONDS``; idle calls closed);
- the heartbeat (port leases, holder keys, orphan sweep) every third of the lease.
"""

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry

from media_ingest.calls import CallRegistry, PayloadTable
from media_ingest.codecs import parse_payload_map
from media_ingest.control import GROUP, LIFECYCLE_TOPICS, MediaControl, inbox
from media_ingest.events import EventPublisher
from media_ingest.metrics import IngestMetrics, MediaCollector
from media_ingest.playback import PlaybackRouter
from media_ingest.ports import PortAllocator
from media_ingest.settings import IngestSettings
from voicetap_common.call_control import telnyx_client
from voicetap_common.commands import MEDIA_COMMANDS
from voicetap_common.consumer import (
    ConsumerMetrics,
    ConsumerOptions,
    StreamConsumer,
    default_consumer_name,
)
from voicetap_common.media_events import MEDIA_ANALYTICS, MEDIA_AUDIO
from voicetap_common.redis_client import REDIS_UNAVAILABLE, connect, ping
from voicetap_common.serving import sleep_or_stop
from voicetap_common.streams import Entry, Producer

log = logging.getLogger("voicetap.media_ingest")

TICK_SECONDS = 0.05
BLOCK_MS = 1000


class IngestService:
    def __init__(self, settings: IngestSettings, *, client: Any = None) -> None:
        self.settings = settings
        self.instance = settings.ingest_instance_id or default_consumer_name()
        self.redis = connect(settings, blocking_ms=BLOCK_MS)
        self.prometheus = CollectorRegistry()
        self.metrics = IngestMetrics(self.prometheus)
        self.producer = Producer(self.redis, settings.topic_maxlen, settings.topic_partitions)
        self.publisher = EventPublisher(
            self.redis,
            self.producer,
            self.metrics,
            queue_size=settings.ingest_event_queue,
            maxlens={
                MEDIA_ANALYTICS: settings.ingest_analytics_maxlen,
                MEDIA_AUDIO: settings.ingest_audio_maxlen,
            },
            default_maxlen=settings.topic_maxlen,
        )
        dynamic = (
            parse_payload_map(settings.ingest_dynamic_payload_types)
            if settings.ingest_dynamic_payload_types
            else None
        )
        self.payload_types = PayloadTable(dynamic)
        self.calls = CallRegistry(
            settings.voicetap_data_dir,
            instance=self.instance,
            publisher=self.publisher,
            payload_types=self.payload_types,
            sample_rate=settings.ingest_recording_rate,
            jitter_ms=settings.ingest_jitter_ms,
            interval=settings.ingest_analytics_interval_seconds,
            publish_audio=settings.ingest_publish_audio,
        )
        self.allocator = PortAllocator(
            self.redis,
            bind_host=settings.ingest_rtp_host,
            public_host=settings.ingest_public_host,
            ports=settings.rtp_port_range(),
            lease_seconds=settings.ingest_port_lease_seconds,
            instance=self.instance,
        )
        self._own_client = client is None
        self.client = client
        self.control = MediaControl(
            settings,
            self.redis,
            self.publisher,
            self.calls,
            self.allocator,
            client,
            self.metrics,
            self.instance,
        )
        self.playback = PlaybackRouter(self.redis, block_ms=BLOCK_MS)
        self.consumer = StreamConsumer(
            self.redis,
            self.producer,
            ConsumerOptions(
                group=GROUP,
                topics=(*LIFECYCLE_TOPICS, MEDIA_COMMANDS, inbox(self.instance)),
                consumer=self.instance,
                block_ms=BLOCK_MS,
                partitions=settings.topic_partitions,
            ),
            self._handle,
            ConsumerMetrics(self.prometheus),
        )
        self.prometheus.register(
            MediaCollector(
                lambda: len(self.calls),
                self.calls.leg_counts,
                lambda: (self.allocator.in_use, self.allocator.capacity),
            )
        )
        self.stop_event = self.control.stop_event
        self._consuming = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publishing: asyncio.Task[None] | None = None
        self.playback_ready = asyncio.Event()

    async def start(self) -> None:
        if self.client is None and self.settings.telnyx_api_key:
            self.client = telnyx_client(self.settings)
            self.control.set_client(self.client)
        if self.client is None:
            log.warning("TELNYX_API_KEY is not set: media ingest cannot start forks or streams")
        else:
            self.client.calls.actions  # noqa: B018 - the SDK loads its resources lazily (0.7 s): not during a call
        reclaimed = await self.control.reclaim_own_leases()
        await self.control.heartbeat()
        recovered = await self.control.recover_orphans()
        log.info(
            "media ingest starting",
            extra={
                "instance": self.instance,
                "mode": self.settings.ingest_mode,
                "ports": self.settings.ingest_rtp_ports,
                "reclaimed_port_pairs": reclaimed,
                "recovered_recordings": len(recovered),
            },
        )
        stop = self._consuming
        self._publishing = asyncio.create_task(self.publisher.run(self.stop_event))
        self._tasks = [
            asyncio.create_task(self.consumer.run(stop)),
            asyncio.create_task(self.playback.run(stop, self.playback_ready)),
            asyncio.create_task(self._ticker(stop)),
            asyncio.create_task(self._heartbeat(stop)),
        ]

    async def stop(self) -> None:
        """Stop taking work, finish every call (recordings completed, ports released), flush events."""
        self._consuming.set()
        _, pending = await asyncio.wait(self._tasks, timeout=5)
        for (
            task
        ) in pending:  # e.g. a batch waiting on the Telnyx API: left unacknowledged, claimed later
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.control.shutdown(), 10)
        except REDIS_UNAVAILABLE as exc:
            log.error("could not finish every call cleanly", extra={"error": repr(exc)})
        self.stop_event.set()
        if self._publishing is not None:
            try:
                await asyncio.wait_for(self._publishing, 5)
            except TimeoutError:
                log.warning(
                    "media events still queued at exit were dropped",
                    extra={"queued": self.publisher.queued},
                )
        if self.client is not None and self._own_client:
            await self.client.close()
        await self.redis.aclose()
        log.info("media ingest stopped", extra={"instance": self.instance})

    async def ready(self) -> dict[str, bool]:
        return {"redis": await ping(self.redis, self.settings.redis_timeout_seconds)}

    async def _handle(self, entries: list[Entry]) -> None:
        """Entries of different calls run concurrently; one call's entries in order."""
        by_call: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            key = entry.fields.get("call_control_id", b"").decode() or entry.entry_id
            by_call[key].append(entry)
        results = await asyncio.gather(
            *(self._handle_call(group) for group in by_call.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _handle_call(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.topic == MEDIA_COMMANDS:
                await self.control.handle_commands([entry])
            elif entry.topic in LIFECYCLE_TOPICS:
                await self.control.handle_lifecycle([entry])
            else:
                await self.control.handle_inbox([entry])

    async def _ticker(self, stop: asyncio.Event) -> None:
        next_expiry = 0.0
        while not stop.is_set():
            now = time.monotonic()
            self.calls.tick_due(now)
            if now >= next_expiry:
                next_expiry = now + 1.0
                try:
                    await self.control.expire_idle(now)
                except Exception:  # noqa: BLE001 - the ticker must go on
                    log.exception("closing idle calls failed")
            await asyncio.sleep(TICK_SECONDS)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        period = max(self.settings.ingest_port_lease_seconds / 3, 0.2)
        while not stop.is_set():
            await sleep_or_stop(stop, period)
            if stop.is_set():
                return
            try:
                await self.control.heartbeat()
                await self.control.recover_orphans()
            except REDIS_UNAVAILABLE as exc:
                log.warning(
                    "heartbeat failed (leases expire if this lasts)", extra={"error": str(exc)}
                )
