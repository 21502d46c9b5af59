"""This instance's part of an erasure (``voicetap_common.erasure``): its recordings, and its live calls.

Only the indexer can tell which calls a number made, so the instance follows the indexer's parts on
``voicetap.erasure.progress`` (which name the call ids) through a group of its own,
``media_ingest.erasure:<instance>``: every instance holds recordings of its own, so each must see
every erasure. For each call it stops a live recording (partial file deleted, no completed event),
deletes the recording, sweeps the topics again when it held anything (media events it wrote after
the indexer's sweep), and publishes its part.

While it runs, the instance keeps a participant key alive, so that a requester waits for the
instances that are up and not for those gone. An instance that was down misses nothing: at
start, recordings of tombstoned calls are deleted (:meth:`RecordingEraser.sweep_tombstoned`), and
so are orphans of tombstoned calls instead of being repaired (``recovery``); the group is created from "now" and destroyed on a
clean stop, so a process named after its pid leaves nothing behind.
"""

import asyncio
import logging
from datetime import UTC, datetime

from pydantic import ValidationError

from media_ingest.calls.registry import CallRegistry
from media_ingest.endings import CallEndings
from media_ingest.recording.deletion import delete_recording, spooled_calls
from media_ingest.recording.spool import Spool
from voicetap_common.erasure import (
    INDEXER_PART,
    RECORDINGS_PART_PREFIX,
    erased_among,
    participant_key,
    sweep_topics,
)
from voicetap_common.recordings_store import RecordingsStore
from voicetap_sdk import codec
from voicetap_sdk.backoff import sleep_or_stop
from voicetap_sdk.consumer import Undeliverable
from voicetap_sdk.erasure_events import ErasureProgress
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.streams import Entry, Producer
from voicetap_sdk.topics import ERASURE_PROGRESS

log = logging.getLogger("voicetap.media_ingest.erasure")

PARTICIPANT_SECONDS = 15  # the participant key outlives two refreshes


def erasure_group(instance: str) -> str:
    return RECORDINGS_PART_PREFIX + instance


class RecordingEraser:
    def __init__(
        self,
        redis: RedisClient,
        producer: Producer,
        calls: CallRegistry,
        endings: CallEndings,
        *,
        spool: Spool,
        store: RecordingsStore,
        instance: str,
    ) -> None:
        self._redis = redis
        self._producer = producer
        self._calls = calls
        self._endings = endings
        self._spool = spool
        self._store = store
        self.part = erasure_group(instance)

    async def handle(self, entries: list[Entry]) -> None:
        """The StreamConsumer's handler: the indexer's parts; every other part is only read past."""
        for entry in entries:
            try:
                progress = ErasureProgress.model_validate(codec.loads(entry.body))
            except (ValidationError, codec.JSONDecodeError) as exc:
                raise Undeliverable(f"entry {entry.entry_id} is not erasure progress") from exc
            if progress.part == INDEXER_PART:
                await self.erase(progress)

    async def erase(self, indexer_part: ErasureProgress) -> ErasureProgress:
        call_ids = indexer_part.call_control_ids
        live = recordings = 0
        for call_id in call_ids:
            call = self._calls.get(call_id)
            if call is not None:
                await self._endings.erase(call)
                live += 1
            recordings += await delete_recording(self._spool, self._store, call_id)
        entries = await sweep_topics(self._redis, call_ids) if live or recordings else 0
        progress = ErasureProgress(
            id=f"{indexer_part.request_id}:{self.part}",
            occurred_at=datetime.now(UTC),
            request_id=indexer_part.request_id,
            reason=indexer_part.reason,
            part=self.part,
            call_control_ids=call_ids,
            removed={"recordings": recordings, "live_recordings": live, "topic_entries": entries},
        )
        await self._producer.publish_model(
            ERASURE_PROGRESS, progress.id, ERASURE_PROGRESS, progress
        )
        if live or recordings:
            log.info(
                "recordings erased",
                extra={"request": indexer_part.request_id, "recordings": recordings, "live": live},
            )
        return progress

    async def sweep_tombstoned(self) -> int:
        """Delete the recordings kept here of calls erased meanwhile (while this instance was down,
        or by a request it did not see); how many went."""
        held = [call_id for call_id in spooled_calls(self._spool) if call_id not in self._calls]
        removed = 0
        for start in range(0, len(held), 500):
            for call_id in await erased_among(self._redis, held[start : start + 500]):
                removed += await delete_recording(self._spool, self._store, call_id)
        return removed

    async def attend(self, stop: asyncio.Event, period: float) -> None:
        """Keep the participant key alive until ``stop``, then remove it."""
        while not stop.is_set():
            try:
                await self._redis.set(participant_key(self.part), b"1", ex=PARTICIPANT_SECONDS)
            except REDIS_UNAVAILABLE as exc:
                log.warning(
                    "could not renew the erasure participant key", extra={"error": str(exc)}
                )
            await sleep_or_stop(stop, period)
        try:
            await self._redis.delete(participant_key(self.part))
        except REDIS_UNAVAILABLE as exc:
            log.warning("could not remove the erasure participant key", extra={"error": str(exc)})

    async def leave(self) -> None:
        """A clean stop: the group goes, so that names made of a pid leave no group behind."""
        try:
            await self._redis.xgroup_destroy(ERASURE_PROGRESS, self.part)
        except REDIS_UNAVAILABLE as exc:
            log.warning("could not leave the erasure group", extra={"error": str(exc)})
