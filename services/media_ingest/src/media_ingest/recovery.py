"""Recovery after a crash: port leases an earlier life of this instance left, and recordings whose
writer died (a sidecar still beside them) repaired and spooled for the store (which announces
them once, ``media_ingest.uploads``)."""

import logging
from pathlib import Path

from media_ingest.calls.registry import CallRegistry
from media_ingest.keys import INSTANCE_PREFIX, REPAIR_PREFIX
from media_ingest.ports import PortAllocator
from media_ingest.protocol.wav import read_header, repair_wav
from media_ingest.recording.deletion import delete_recording
from media_ingest.recording.recovered import recovered_recording
from media_ingest.recording.sidecar import Orphan, find_orphans
from media_ingest.uploads import Uploads
from voicetap_common.erasure import erased_among
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
        if orphan.call_control_id in self._registry:
            return False
        if orphan.instance != self._instance and await self._redis.exists(
            INSTANCE_PREFIX + orphan.instance
        ):
            return False  # its writer is alive
        # another instance sharing the directory may be on it
        return bool(
            await self._redis.set(
                REPAIR_PREFIX + orphan.call_control_id,
                self._instance,
                nx=True,
                ex=REPAIR_CLAIM_SECONDS,
            )
        )

    async def _recover(self, orphan: Orphan) -> RecordingCompleted | None:
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
