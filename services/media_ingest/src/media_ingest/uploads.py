"""Finished recordings into the store, then announced: upload, verify (size and SHA-256 read back),
publish ``voicetap.recording.completed`` once, and only then drop the spooled copy.

One loop works through the spool, oldest first (``INGEST_UPLOAD_CONCURRENCY`` at a time): woken when a call ends, and every
``RESCAN_SECONDS`` for what an earlier life of this instance, or a dead neighbour sharing the
directory, left there. While the store is down the recordings stay spooled and the loop waits
through a :class:`~voicetap_sdk.backoff.Backoff`: the event waits for the upload.

A process killed after the upload and before the event uploads again on its next start (the same
bytes), and ``publish_once`` keeps the event single; killed after the event and before the spool
is cleared, the event is not published again for the same reason.
"""

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from media_ingest.events import EventPublisher
from media_ingest.keys import INSTANCE_PREFIX, UPLOAD_PREFIX
from media_ingest.recording.spool import Spool, Spooled
from voicetap_common.recordings_store import RecordingsStore, StoreError
from voicetap_sdk.backoff import Backoff
from voicetap_sdk.media_events import RecordingCompleted
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.topics import RECORDING_COMPLETED

log = logging.getLogger("voicetap.media_ingest.uploads")

RESCAN_SECONDS = 30.0
UPLOAD_CLAIM_SECONDS = 300  # another instance takes over a dead one's spooled recording


class Uploads:
    def __init__(
        self,
        spool: Spool,
        store: RecordingsStore,
        publisher: EventPublisher,
        redis: RedisClient,
        *,
        instance: str,
        spool_bound: int,
        concurrency: int,
    ) -> None:
        """``spool_bound``: above this many spooled recordings the instance is not ready;
        ``concurrency``: uploads at a time."""
        self.spool = spool
        self.store = store
        self._publisher = publisher
        self._redis = redis
        self._instance = instance
        self._bound = spool_bound
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self.stored = 0  # recordings stored and announced by this process
        self._backoff = Backoff(
            "recordings store", log, first=0.5, cap=10.0, context={"store": store.url}
        )

    def submit(self, event: RecordingCompleted, wav: Path) -> None:
        """Spool a finished recording for the loop (the caller removes its sidecar afterwards)."""
        self.spool.add(event, wav, self._instance)
        self._wake.set()

    def within_bound(self) -> bool:
        return self.spool.stats()[0] <= self._bound

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; then one last pass (the calls the shutdown finished), and return."""
        while True:
            stopping = stop.is_set()
            self._wake.clear()
            failure = await self.upload_pending(stop)
            if stopping:
                return
            if failure is not None:
                await self._backoff.failed(failure, stop)
                continue
            self._backoff.succeeded()
            wake = asyncio.ensure_future(self._wake.wait())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {wake, stopped}, timeout=RESCAN_SECONDS, return_when="FIRST_COMPLETED"
                )
            finally:
                wake.cancel()
                stopped.cancel()

    async def upload_pending(self, stop: asyncio.Event) -> Exception | None:
        """Upload and announce every spooled recording this instance may take, oldest first,
        ``concurrency`` at a time; after the first store (or Redis) failure no further one starts
        (the others would meet it too), and that failure is returned."""
        failures: list[Exception] = []
        slots = asyncio.Semaphore(self._concurrency)

        async def one(item: Spooled) -> None:
            async with slots:
                if failures:
                    return
                try:
                    if await self._ours(item):
                        await self._upload(item, stop)
                except StoreError as exc:
                    failures.append(exc)
                except REDIS_UNAVAILABLE as exc:
                    failures.append(exc)

        async with asyncio.TaskGroup() as group:
            for item in self.spool.pending():
                group.create_task(one(item))
        return failures[0] if failures else None

    async def _ours(self, item: Spooled) -> bool:
        if item.instance == self._instance:
            return True
        if await self._redis.exists(INSTANCE_PREFIX + item.instance):
            return False  # its instance lives and uploads it
        return bool(
            await self._redis.set(
                UPLOAD_PREFIX + item.call_control_id,
                self._instance,
                nx=True,
                ex=UPLOAD_CLAIM_SECONDS,
            )
        )

    async def _upload(self, item: Spooled, stop: asyncio.Event) -> None:
        ccid = item.call_control_id
        stored = await self.store.put(ccid, item.wav)
        if not item.event_file.exists():  # erased while it was uploading: nothing stays stored
            await self.store.delete(ccid)
            log.info("recording erased during its upload: deleted", extra={"call_control_id": ccid})
            return
        local = self.store.local_path(ccid)
        event = item.event.model_copy(
            update={
                "path": str(local) if local is not None else stored.storage_url,
                "storage_url": stored.storage_url,
                "bytes": stored.bytes,
                "sha256": stored.sha256,
            }
        )
        published = await self._publisher.publish_once(
            RECORDING_COMPLETED, event.id, RECORDING_COMPLETED, event, stop, call_control_id=ccid
        )
        if not published:  # stopping with Redis away: spooled for the next start
            return
        self.spool.remove(item)
        self.stored += 1
        log.info(
            "recording stored",
            extra={
                "call_control_id": ccid,
                "storage_url": stored.storage_url,
                "bytes": stored.bytes,
            },
        )


class SpoolCollector:
    """``voicetap_ingest_recordings_spooled``, the oldest one's age and the recordings stored, at
    scrape time."""

    def __init__(self, uploads: Uploads) -> None:
        self._uploads = uploads

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        count, oldest = self._uploads.spool.stats()
        yield CounterMetricFamily(
            "voicetap_ingest_recordings_stored",
            "Recordings uploaded, verified and announced by this process",
            value=self._uploads.stored,
        )
        yield GaugeMetricFamily(
            "voicetap_ingest_recordings_spooled",
            "Finished recordings waiting in the local spool for the store",
            value=count,
        )
        yield GaugeMetricFamily(
            "voicetap_ingest_recordings_spooled_oldest_seconds",
            "Age of the oldest spooled recording (0 when none)",
            value=oldest,
        )
