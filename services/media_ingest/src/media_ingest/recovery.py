"""Recovery after a crash: port leases an earlier life of this instance left, and recordings whose
writer died (a sidecar still beside them) repaired and spooled for the store (which announces
them once, ``media_ingest.uploads``). The part of a call another instance took over meanwhile
(``media_ingest.takeover``) is stored apart instead, for that instance to join at the call's end."""

import logging
from pathlib import Path

from media_ingest.calls.registry import CallRegistry
from media_ingest.keys import INSTANCE_PREFIX, PARTS_TTL, REPAIR_PREFIX, held_key, parts_key
from media_ingest.ports import PortAllocator
from media_ingest.protocol.wav import read_header, repair_wav
from media_ingest.recording.deletion import delete_recording
from media_ingest.recording.files import part_object
from media_ingest.recording.recovered import recovered_recording
from media_ingest.recording.sidecar import Orphan, find_orphans
from media_ingest.uploads import Uploads
from voicetap_common.erasure import erased_among
from voicetap_common.recordings_store import StoreError
from voicetap_sdk import codec
from voicetap_sdk.media_events import RecordingCompleted
from voicetap_sdk.redis_client import RedisClient

log = logging.getLogger("voicetap.media_ingest.recovery")

REPAIR_CLAIM_SECONDS = 60


class Recovery:
    def __init__(
        self,
        redis: RedisClient,
        registry: CallRegistry,
        allocator: PortAllocator,
        uploads: Uploads,
        *,
        instance: str,
        data_dir: Path,
    ) -> None:
        self._redis = redis
        self._registry = registry
        self._allocator = allocator
        self._uploads = uploads
        self._instance = instance
        self._data_dir = data_dir

    async def reclaim_own_leases(self) -> int:
        """Leases a previous process of this instance name left: freed at once (it is gone)."""
        prefix = self._instance + "|"
        return await self._allocator.reclaim(lambda owner: owner.startswith(prefix))

    async def recover_orphans(self) -> list[RecordingCompleted]:
        """Repair WAVs left by dead instances (or an earlier life of this one) and spool them."""
        recovered = []
        orphans = find_orphans(self._data_dir)
        erased = await erased_among(self._redis, (orphan.call_control_id for orphan in orphans))
        for orphan in orphans:
            if orphan.call_control_id in erased:  # erased while its writer was dead: no repair
                await delete_recording(
                    self._uploads.spool, self._uploads.store, orphan.call_control_id
                )
                continue
            if await self._ours_to_repair(orphan):
                event = await self._recover(orphan)
                if event is not None:
                    recovered.append(event)
        return recovered

    async def _ours_to_repair(self, orphan: Orphan) -> bool:
        ccid = orphan.call_control_id
        if ccid in self._registry:
            return False
        if orphan.instance == self._instance:  # not picked up again: no one else will take it
            await self._redis.hdel(held_key(self._instance), ccid)
        elif await self._redis.exists(INSTANCE_PREFIX + orphan.instance):
            return False  # its writer is alive
        elif await self._redis.hexists(held_key(orphan.instance), ccid):
            return False  # a live call a survivor takes over first (then this is one part of it)
        # another instance sharing the directory may be on it
        return bool(
            await self._redis.set(
                REPAIR_PREFIX + ccid,
                self._instance,
                nx=True,
                ex=REPAIR_CLAIM_SECONDS,
            )
        )

    async def _store_part(self, orphan: Orphan, part: int) -> None:
        """Store the part a dead holder recorded of a call taken over, for the instance that
        finishes the call to join (its object apart until then); left for the next sweep while
        the store is down."""
        ccid = orphan.call_control_id
        try:
            frames = repair_wav(orphan.wav)
            rate = read_header(orphan.wav).sample_rate
            await self._uploads.store.put(part_object(ccid, part), orphan.wav)
        except (OSError, ValueError, StoreError) as exc:
            log.warning(
                "could not store the part of a call taken over (tried again)",
                extra={"call_control_id": ccid, "part": part, "error": str(exc)},
            )
            return
        start = float(orphan.facts.get("start", 0.0))
        stored = {"start": start, "end": round(start + frames / rate, 3)}
        key = parts_key(ccid)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{part}:stored", codec.dumps(stored))
            pipe.expire(key, PARTS_TTL)
            await pipe.execute()
        orphan.wav.unlink(missing_ok=True)
        orphan.remove_sidecar()
        log.warning(
            "stored the part a dead instance recorded of a call taken over",
            extra={"call_control_id": ccid, "part": part, "dead_instance": orphan.instance},
        )

    async def _recover(self, orphan: Orphan) -> RecordingCompleted | None:
        part = int(orphan.facts.get("part", 1))
        if await self._redis.hexists(parts_key(orphan.call_control_id), str(part)):
            await self._store_part(orphan, part)  # its call was taken over: one part of it
            return None
        try:
            frames = repair_wav(orphan.wav)
            rate = read_header(orphan.wav).sample_rate
        except (OSError, ValueError) as exc:
            log.error(
                "could not repair an orphaned recording",
                extra={"path": str(orphan.wav), "error": str(exc)},
            )
            orphan.remove_sidecar()
            return None
        event = recovered_recording(
            orphan, instance=self._instance, frames=frames, sample_rate=rate
        )
        try:
            self._uploads.submit(event, orphan.wav)
        except OSError as exc:
            log.error(
                "could not spool a recovered recording",
                extra={"path": str(orphan.wav), "error": str(exc)},
            )
            return None
        orphan.remove_sidecar()
        log.warning(
            "recovered the recording of a dead instance",
            extra={
                "call_control_id": orphan.call_control_id,
                "dead_instance": orphan.instance,
                "frames": frames,
            },
        )
        return event
