"""The indexer's stream handler: one database transaction per batch, then the live feed and commands.

The shared :class:`~voicetap_sdk.consumer.StreamConsumer` acknowledges a batch only after this
handler returns, i.e. after the commit. A database that is down or locked raises ``RetryLater``:
the same batch is retried in place, never acknowledged and dropped. A malformed entry raises
``Undeliverable`` and goes to the dead-letter topic while the rest of its batch is stored. An
automatic transcription start that failed transiently raises as well: the batch is handled again
entry by entry (storing it again changes nothing), so only that ``call.answered`` stays pending,
to be delivered again.

An event about an erased call (its tombstone set, ``voicetap_common.erasure``) is acknowledged and
not stored. The check before the write skips them cheaply; the check after the write and the live
feed closes the race with an erasure running meanwhile: whatever this batch stored about a call
tombstoned since is deleted again here (the erasure sets the tombstone before it deletes, so either
it deletes what this batch wrote or this check sees its tombstone).
"""

import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from transcript_indexer.control import TranscriptionStarter
from transcript_indexer.live import LiveFeed
from transcript_indexer.records import build_batch
from transcript_indexer.storage.base import Storage, StorageUnavailable
from voicetap_common.erasure import erased_among
from voicetap_sdk import topics
from voicetap_sdk.consumer import RetryLater
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry

GROUP = "transcript_indexer"
TOPICS = (
    topics.CALL_TRANSCRIPTION,
    topics.CALL_INITIATED,
    topics.CALL_ANSWERED,
    topics.CALL_HANGUP,
)


def consumer_names(name: str, count: int) -> list[str]:
    """The names of the process's ``count`` consumers of the group: ``name`` alone, or
    ``<name>-<n>`` when there are several."""
    return [name] if count == 1 else [f"{name}-{n}" for n in range(count)]


class Indexer:
    def __init__(
        self,
        storage: Storage,
        redis: RedisClient,
        live: LiveFeed,
        starter: TranscriptionStarter | None,
        registry: CollectorRegistry,
    ) -> None:
        self._storage = storage
        self._redis = redis
        self._live = live
        self._starter = starter
        self._stored = Counter(
            "voicetap_indexer_rows_stored_total",
            "Segments and partials newly stored",
            ["kind"],
            registry=registry,
        )
        self._ignored = Counter(
            "voicetap_indexer_erased_calls_ignored_total",
            "Calls whose late events a batch acknowledged without storing them (erased)",
            registry=registry,
        )
        self._write_seconds = Histogram(
            "voicetap_indexer_write_seconds",
            "Time to write one batch in one transaction",
            registry=registry,
        )

    async def handle(self, entries: list[Entry]) -> None:
        calls = {entry.fields.get("call_control_id", b"").decode() for entry in entries} - {""}
        erased = await erased_among(self._redis, calls)
        if erased:
            entries = [
                e for e in entries if e.fields.get("call_control_id", b"").decode() not in erased
            ]
            self._ignored.inc(len(calls & erased))
        batch = build_batch(entries)
        started = time.perf_counter()
        try:
            applied = await self._storage.apply(batch, datetime.now(UTC))
        except StorageUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        self._write_seconds.observe(time.perf_counter() - started)
        self._stored.labels("segment").inc(len(applied.segments))
        self._stored.labels("partial").inc(len(applied.partials))
        await self._live.publish(applied.segments, applied.partials)
        if erased_since := await erased_among(self._redis, batch.calls):
            await self._erase_again(sorted(erased_since))
        if self._starter is not None and batch.answered:
            await self._starter.start_all(
                [(call, event) for call, event in batch.answered if call not in erased_since]
            )

    async def _erase_again(self, call_ids: list[str]) -> None:
        """Calls erased while this batch was written: what it stored about them goes again."""
        try:
            await self._storage.erase_calls(call_ids)
        except StorageUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        await self._live.drop(call_ids)
