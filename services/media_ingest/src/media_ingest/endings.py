"""How calls end here: finished (recording completed and spooled for the store, which announces
it once stored), discarded (media never started), closed when idle or paused too long, or all
finished because the process stops.

Port pairs handed back by a call's transitions are released here, awaited (never in the background).
"""

import logging
from dataclasses import dataclass

from media_ingest.calls.call import Call
from media_ingest.calls.registry import CallRegistry
from media_ingest.events import EventPublisher
from media_ingest.metrics import IngestMetrics
from media_ingest.ownership import Ownership
from media_ingest.ports import Allocation, PortAllocator
from media_ingest.uploads import Uploads
from voicetap_sdk.media_events import RecordingCompleted
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE

log = logging.getLogger("voicetap.media_ingest.endings")


@dataclass(frozen=True)
class Timeouts:
    media: float  # INGEST_MEDIA_TIMEOUT_SECONDS: media silent this long ends the call
    paused: float  # INGEST_PAUSED_TIMEOUT_SECONDS: paused this long ends the call


class CallEndings:
    def __init__(
        self,
        registry: CallRegistry,
        allocator: PortAllocator,
        ownership: Ownership,
        uploads: Uploads,
        publisher: EventPublisher,
        metrics: IngestMetrics,
        timeouts: Timeouts,
    ) -> None:
        """``publisher``: its queued events of an erased call are dropped."""
        self._registry = registry
        self._allocator = allocator
        self._ownership = ownership
        self._uploads = uploads
        self._publisher = publisher
        self._metrics = metrics
        self._timeouts = timeouts

    async def release(self, allocation: Allocation | None) -> None:
        """Give a port pair back (its sockets closed at once; the lease expires if Redis is away)."""
        if allocation is None:
            return
        try:
            await self._allocator.release(allocation)
        except REDIS_UNAVAILABLE as exc:
            log.warning("port release failed (the lease expires)", extra={"error": repr(exc)})

    async def finish(self, call: Call, reason: str) -> RecordingCompleted | None:
        if call.finished:
            return None
        allocation = call.end()
        if allocation is not None:
            await self._allocator.release(allocation)
        event = self._registry.finish(call, reason)
        try:
            self._uploads.submit(event, call.path)
        except OSError as exc:  # the sidecar stays: the next start recovers it
            log.error(
                "could not spool the finished recording",
                extra={"call_control_id": call.call_control_id, "error": str(exc)},
            )
        else:
            call.sidecar.remove()
        if call.stream is not None:
            call.stream.close()
        self._metrics.calls_finished.labels(reason).inc()
        await self._ownership.drop_ended(call.call_control_id)
        return event

    async def discard(self, call: Call) -> None:
        """Forget a call whose media never started (the command failed): no recording."""
        self._registry.discard(call)
        await self._ownership.drop_discarded(call.call_control_id)

    async def erase(self, call: Call) -> None:
        """Stop a live call that is being erased: its media dropped from now on, its ports and
        stream released, no completed event; events of it still queued are dropped. Its partial
        recording is left to the eraser, which deletes it with the rest."""
        allocation = call.end()
        self._registry.drop(call)
        if call.stream is not None:
            call.stream.close()
        self._publisher.forget(call.call_control_id)
        self._metrics.calls_finished.labels("erased").inc()
        await self.release(allocation)
        await self._ownership.drop_ended(call.call_control_id)

    async def surrender(self, call_control_ids: list[str]) -> None:
        """Calls another instance took over while this one was stalled (not dead): their media
        dropped here at once, ports and stream released, no completed event; the recording so far
        stays as the call's earlier part, stored apart by the orphan sweep for the new holder to
        join."""
        for call_control_id in call_control_ids:
            call = self._registry.get(call_control_id)
            if call is None:
                continue
            allocation = call.end()
            self._registry.drop(call)
            if call.stream is not None:
                call.stream.close()
            await self.release(allocation)
            self._metrics.calls_finished.labels("taken_over").inc()
            log.warning(
                "a call was taken over while this instance was stalled: its part stays here",
                extra={"call_control_id": call_control_id, "part": call.part},
            )

    async def expire_idle(self, now: float) -> None:
        for call in self._registry.calls():
            if call.stopped_at is not None:
                if now - call.stopped_at > self._timeouts.paused:
                    await self.finish(call, "paused_timeout")
            elif now - call.last_media > self._timeouts.media:
                await self.finish(call, "media_timeout")

    async def shutdown(self) -> None:
        """Finish every call (the process is stopping) and give its ports back."""
        for call in self._registry.calls():
            await self.finish(call, "shutdown")
        await self._ownership.resign()
