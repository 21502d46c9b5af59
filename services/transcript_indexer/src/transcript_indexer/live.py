"""The live transcript of each call: one bounded Redis stream per call, written after each commit.

Whichever indexer process stored a segment, every API process can follow the call's stream, so a
live client sees each segment and partial once it is durable. Entries are plain fields like every
topic: ``id`` (the Telnyx event id), ``type`` (``segment``, ``partial`` or ``completed``), ``event``
(JSON), ``call_control_id``. A segment replaces the partial of its track.
"""

from collections.abc import Iterable

from transcript_indexer.records import Segment
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient

# Every live stream shares one hash tag, so one script appends a whole batch in one round trip
# (on Redis Cluster they all live on one shard; a live entry is small and short-lived).
LIVE_PREFIX = "{voicetap.transcript.live}:"

# KEYS: one live stream per entry; ARGV: maxlen, ttl, then id, type, event, call_control_id per entry.
APPEND = """
for i, key in ipairs(KEYS) do
    local at = 2 + (i - 1) * 4
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], '*',
        'id', ARGV[at + 1], 'type', ARGV[at + 2], 'event', ARGV[at + 3], 'call_control_id', ARGV[at + 4])
    redis.call('EXPIRE', key, ARGV[2])
end
return #KEYS
"""


def live_topic(call_control_id: str) -> str:
    return LIVE_PREFIX + call_control_id


class LiveFeed:
    def __init__(self, redis: RedisClient, maxlen: int, ttl_seconds: int) -> None:
        self._redis = redis
        self._append = redis.register_script(APPEND)
        self._maxlen = maxlen
        self._ttl = ttl_seconds

    async def publish(self, segments: Iterable[Segment], partials: Iterable[Segment]) -> None:
        """The whole batch in one round trip; a call's stream expires ``ttl`` after its last entry."""
        keys: list[str] = []
        args: list[str | bytes | int] = [self._maxlen, self._ttl]
        for kind, rows in (("segment", segments), ("partial", partials)):
            for row in rows:
                keys.append(live_topic(row.call_control_id))
                args.extend((row.event_id, kind, codec.dumps(row.as_json()), row.call_control_id))
        if keys:
            await self._append(keys=keys, args=args)

    async def publish_completed(self, call_control_id: str, event_id: str) -> None:
        body = codec.dumps({"call_control_id": call_control_id})
        await self._append(
            keys=[live_topic(call_control_id)],
            args=[self._maxlen, self._ttl, event_id, "completed", body, call_control_id],
        )

    async def drop(self, call_control_ids: list[str]) -> int:
        """Delete the calls' live streams (erasure); how many there were. They share one hash tag:
        one DEL takes them all, on a cluster too."""
        if not call_control_ids:
            return 0
        return int(await self._redis.delete(*(live_topic(c) for c in call_control_ids)))
