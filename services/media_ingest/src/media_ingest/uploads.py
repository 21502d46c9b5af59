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
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from media_ingest.events import EventPublisher
from media_ingest.keys import INSTANCE_PREFIX, UPLOAD_PREFIX, parts_key
from media_ingest.recording.files import joining_path, part_object
from media_ingest.recording.joining import join_parts
from media_ingest.recording.spool import Spool, Spooled
from media_ingest.redis_values import text
from voicetap_common.recordings_store import RecordingsStore, StoreError
from voicetap_sdk import codec
from voicetap_sdk.backoff import Backoff
from voicetap_sdk.media_events import RecordingCompleted, RecordingPart
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.topics import RECORDING_COMPLETED

log = logging.getLogger("voicetap.media_ingest.uploads")

RESCAN_SECONDS = 30.0
PART_WAIT_SECONDS = 120.0  # for an earlier part of a call taken over to reach the store
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
        event = item.event
        if item.joined and joining_path(item.wav).exists():  # killed before the rename
            joining_path(item.wav).replace(item.wav)
        if event.parts and not item.joined:
            joined = await self._join(item)
            if joined is None:
                return  # an earlier part is still on its way to the store
            event = joined
        stored = await self.store.put(ccid, item.wav)
        if not item.event_file.exists():  # erased while it was uploading: nothing stays stored
            await self.store.delete(ccid)
            log.info("recording erased during its upload: deleted", extra={"call_control_id": ccid})
            return
        local = self.store.local_path(ccid)
        event = event.model_copy(
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
        if event.parts:
            await self._forget_parts(ccid, event.parts)
        self.stored += 1
        log.info(
            "recording stored",
            extra={
                "call_control_id": ccid,
                "storage_url": stored.storage_url,
                "bytes": stored.bytes,
            },
        )

    async def _join(self, item: Spooled) -> RecordingCompleted | None:
        """The recording of a call taken over, made whole: the earlier parts the store holds
        fetched and joined with this instance's part into one file aligned to the call's start
        (silence for a part still missing after ``PART_WAIT_SECONDS``); None while waiting.

        The joined file is written aside, the spooled event rewritten to say so, then the file
        renamed over the part: a process killed in between renames it on its next pass."""
        ccid, event = item.call_control_id, item.event
        pending = joining_path(item.wav)
        stored = await self._stored_parts(ccid)
        earlier = [part for part in event.parts if not part.joined]
        if (
            any(part.part not in stored for part in earlier)
            and time.time() - item.spooled_at < PART_WAIT_SECONDS
        ):
            return None
        fetched: dict[int, Path] = {}
        try:
            for part in earlier:
                if part.part in stored:
                    fetched[part.part] = await self._fetch(
                        part_object(ccid, part.part), item.wav.with_suffix(f".part{part.part}")
                    )
            sources = [(part.start, fetched.get(part.part)) for part in earlier]
            own = event.parts[-1]
            rate = event.sample_rate
            await asyncio.to_thread(join_parts, pending, [*sources, (own.start, item.wav)], rate)
        finally:
            for path in fetched.values():
                path.unlink(missing_ok=True)
        parts = [
            part.model_copy(update={"joined": True, "end": stored[part.part]["end"]})
            if part.part in stored
            else part
            for part in event.parts
        ]
        joined = event.model_copy(update={"parts": parts})
        self.spool.add(joined, item.wav, item.instance, joined=True)
        pending.replace(item.wav)
        missing = [part.part for part in parts if not part.joined]
        log.info(
            "joined the parts of a call taken over",
            extra={"call_control_id": ccid, "parts": len(parts), "missing": missing},
        )
        return joined

    async def _stored_parts(self, call_control_id: str) -> dict[int, dict[str, float]]:
        found: dict[int, dict[str, float]] = {}
        for name, value in (await self._redis.hgetall(parts_key(call_control_id))).items():
            part, _, kind = text(name).partition(":")
            if kind == "stored":
                found[int(part)] = codec.loads(value)
        return found

    async def _fetch(self, key: str, target: Path) -> Path:
        info = await self.store.head(key)
        if info is None:
            raise StoreError(f"the part {key} is listed as stored but the store has none")
        with open(target, "wb") as file:
            async for chunk in self.store.read(key, None, info.etag):
                await asyncio.to_thread(file.write, chunk)
        return target

    async def _forget_parts(self, call_control_id: str, parts: list[RecordingPart]) -> None:
        """The parts are in the announced recording: their objects and list go."""
        try:
            for part in parts:
                if part.joined and part.part != parts[-1].part:
                    await self.store.delete(part_object(call_control_id, part.part))
            await self._redis.delete(parts_key(call_control_id))
        except StoreError as exc:
            _parts_left(call_control_id, exc)
        except REDIS_UNAVAILABLE as exc:
            _parts_left(call_control_id, exc)


def _parts_left(call_control_id: str, exc: Exception) -> None:
    log.warning(
        "could not delete the joined parts (erasure still finds them)",
        extra={"call_control_id": call_control_id, "error": str(exc)},
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
