"""Publishing ``voicetap.transcript.completed`` once per call and revision, whichever process gets there first.

A transcript is complete when its hang-up is stored and nothing new (segment or hang-up) was
stored for the settle time; that is revision 1. A final segment stored after a revision was
published (Telnyx delivers late) makes the call due again, after the settle time too: the next
revision carries the whole transcript again, under an event id that names the revision. A
re-delivered segment is not stored again, so it makes no revision.

Every indexer process sweeps for due calls; publication goes through one Redis script that sets
the revision's "published" key (its value: the call's segment sequence the revision covers) and
appends to the topic atomically (both keys in the hash slot of the topic, or of the call's
partition of it with ``TOPIC_PARTITIONS`` above 1), so two processes can never both publish a
revision. The database is marked afterwards, with the sequence the published
revision covers; a crash in between only means the next sweep finds the key set and marks the
call with the sequence stored in it, so a segment stored meanwhile still gets its revision.

A call erased while its transcript was assembled (``voicetap_common.erasure``) is not announced:
the publication is checked against the call's tombstone afterwards and deleted again, since the
erasure's sweep of the topics may have passed before it.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from redis.typing import EncodableT

from transcript_indexer.formats import as_text
from transcript_indexer.live import LiveFeed
from transcript_indexer.storage.base import DueCompletion, Storage
from voicetap_common.erasure import erased_among
from voicetap_sdk import codec
from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.partitions import stream_for
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import entry_fields
from voicetap_sdk.topics import TRANSCRIPT_COMPLETED, dedupe_key
from voicetap_sdk.transcript_events import (
    TranscriptCompleted,
    TranscriptCompletedPayload,
    TranscriptSegment,
)

log = logging.getLogger("voicetap.transcript_indexer.completion")

# KEYS[1] the "published" key, KEYS[2] the stream; ARGV: ttl, maxlen, segment sequence, then
# field/value pairs. Returns {1, entry id} when published here, else {0, the sequence published}.
PUBLISH_ONCE = """
local covered = redis.call('GET', KEYS[1])
if covered then
    return {0, covered}
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[1])
return {1, redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))}
"""
PUBLISHED_TTL_SECONDS = 7 * 86_400
SWEEP_LIMIT = 100


def completed_event_id(call_control_id: str, revision: int) -> str:
    return f"transcript.completed:{call_control_id}:{revision}"


class Completer:
    def __init__(
        self,
        storage: Storage,
        redis: RedisClient,
        live: LiveFeed,
        settle_seconds: float,
        topic_maxlen: int,
        topic_partitions: int,
        registry: CollectorRegistry,
    ) -> None:
        self._storage = storage
        self._redis = redis
        self._live = live
        self._settle = timedelta(seconds=settle_seconds)
        self._maxlen = topic_maxlen
        self._partitions = topic_partitions
        self._script = redis.register_script(PUBLISH_ONCE)
        self._published = Counter(
            "voicetap_indexer_transcripts_completed_total",
            "Completed transcript revisions published by this process",
            registry=registry,
        )

    @property
    def interval_seconds(self) -> float:
        return max(0.05, min(1.0, self._settle.total_seconds() / 4))

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until ``stop``; outages of the database or Redis are logged and waited out."""
        backoff = Backoff("database or redis", log, first=self.interval_seconds, cap=10.0)
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again; nothing is lost meanwhile
                await backoff.failed(exc, stop)
                continue
            backoff.succeeded()
            await sleep_or_stop(stop, self.interval_seconds)

    async def sweep(self) -> int:
        """Publish every transcript revision that is due; returns how many this process published."""
        now = datetime.now(UTC)
        published = 0
        for due in await self._storage.due_completions(now - self._settle, SWEEP_LIMIT):
            published += await self.complete(due)
        return published

    async def complete(self, due: DueCompletion) -> bool:
        call_control_id = due.call_control_id
        transcript = await self._storage.transcript(call_control_id)
        if transcript is None:  # erased since it was found due
            return False
        now = datetime.now(UTC)
        event_id = completed_event_id(call_control_id, due.revision)
        event = TranscriptCompleted(
            id=event_id,
            occurred_at=now,
            payload=TranscriptCompletedPayload(
                call_control_id=call_control_id,
                revision=due.revision,
                call=transcript.call.as_json(),
                segments=[
                    TranscriptSegment(
                        id=s.event_id,
                        occurred_at=s.occurred_at,
                        track=s.track or None,
                        text=s.text,
                        confidence=s.confidence,
                    )
                    for s in transcript.segments
                ],
                text=as_text(transcript),
            ),
        )
        fields = entry_fields(
            event_id,
            TRANSCRIPT_COMPLETED,
            codec.dumps(event.model_dump(mode="json")),
            call_control_id=call_control_id,
        )
        args: list[EncodableT] = [PUBLISHED_TTL_SECONDS, self._maxlen, due.segment_seq]
        for name, value in fields.items():
            args.extend((name, value))
        stream = stream_for(TRANSCRIPT_COMPLETED, call_control_id, self._partitions)
        published, value = await self._script(
            keys=[dedupe_key(stream, event_id), stream], args=args
        )
        if published and await erased_among(self._redis, [call_control_id]):
            # erased while this was assembled: the erasure's sweep may have run before the append
            await self._redis.xdel(stream, value)
            return False
        covered = due.segment_seq if published else int(value)
        await self._storage.mark_completed(call_control_id, due.revision, covered, now)
        await self._live.publish_completed(
            call_control_id, event_id
        )  # again if another process won: harmless
        if not published:
            return False
        self._published.inc()
        log.info(
            "transcript completed",
            extra={
                "call_control_id": call_control_id,
                "revision": due.revision,
                "segments": len(transcript.segments),
            },
        )
        return True
