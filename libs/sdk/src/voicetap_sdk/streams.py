"""The entry format of every topic, and the producer that writes it.

An entry is plain stream fields that any Redis client in any language can read:

| field | holds |
| --- | --- |
| ``id`` | the event's own id (Telnyx ``data.id``, or voicetap's): the idempotency key |
| ``type`` | the event type (``call.hangup``, ``voicetap.recording.completed``) |
| ``event`` | the event as UTF-8 JSON (a webhook's body exactly as Telnyx signed it) |
| others | optional routing fields, e.g. ``call_control_id``, ``received_at`` |

With ``TOPIC_PARTITIONS`` above 1 a partitioned topic's entries live in its partition streams
(``voicetap_sdk.partitions``): the producer picks the stream from the ``call_control_id`` field,
and an :class:`Entry` read from a partition names both its topic and that stream.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pydantic import BaseModel
from redis.typing import EncodableT, FieldT

from voicetap_sdk import codec
from voicetap_sdk.partitions import stream_for
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.topics import dedupe_key

Fields: TypeAlias = dict[FieldT, EncodableT]
"""An entry's fields as XADD takes them."""

RawEntries: TypeAlias = list[tuple[bytes, dict[bytes, bytes]]]
"""What XRANGE, XREVRANGE or one stream of an XREAD answers. Every client here leaves replies
undecoded, so ids, names and values are bytes; redis-py's own types allow ``str`` as well."""

# An XREAD/XREADGROUP answer: (stream, [(entry id, fields), ...]) per stream that had entries.
Reply = Sequence[tuple[bytes, Sequence[tuple[bytes, Mapping[bytes, bytes]]]]]

# KEYS: stream, its de-duplication key. ARGV: window seconds, maxlen, then field/value pairs.
# Appends unless the key exists, and sets it, atomically; returns the new entry id, or false.
# Both keys share the stream's hash slot (see topics.dedupe_key), so it runs on Redis Cluster too.
PUBLISH_ONCE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*'}
for i = 3, #ARGV do
  args[#args + 1] = ARGV[i]
end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return id
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry read from a topic."""

    topic: str
    entry_id: str
    fields: dict[str, bytes] = field(repr=False)

    @property
    def stream(self) -> str:
        """The stream that holds the entry (acknowledge and claim it there): its topic, unless partitioned."""
        return self.topic

    @property
    def event_id(self) -> str:
        return self.fields.get("id", b"").decode()

    @property
    def event_type(self) -> str:
        return self.fields.get("type", b"").decode()

    @property
    def body(self) -> bytes:
        return self.fields.get("event", b"")

    def json(self) -> Any:
        """The ``event`` field parsed; raises ``codec.JSONDecodeError`` for a body that is not JSON."""
        return codec.loads(self.body)

    @classmethod
    def from_redis(
        cls, topic: str | bytes, entry_id: str | bytes, raw: Mapping[bytes, bytes]
    ) -> "Entry":
        return cls(
            topic=topic.decode() if isinstance(topic, bytes) else topic,
            entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            fields={k.decode(): v for k, v in raw.items()},
        )


@dataclass(frozen=True, slots=True)
class PartitionEntry(Entry):
    """An entry of a partitioned topic, read from the partition stream ``partition``.

    A subclass, not a field of :class:`Entry`, so that reading an unpartitioned topic builds its
    entries exactly as before."""

    partition: str

    @property
    def stream(self) -> str:
        return self.partition


def stream_entry(topic: str, stream: str, entry_id: bytes, raw: Mapping[bytes, bytes]) -> Entry:
    """An entry of ``topic`` read from ``stream``: the topic itself or one of its partitions."""
    if stream == topic:
        return Entry.from_redis(topic, entry_id, raw)
    return PartitionEntry(topic, entry_id.decode(), {k.decode(): v for k, v in raw.items()}, stream)


def entries_of(reply: Reply | None, topic_of: Mapping[str, str] | None = None) -> list[Entry]:
    """The entries of a read. ``topic_of`` (partitions only) maps each stream read to its topic."""
    if topic_of is None:
        return [
            Entry.from_redis(topic, entry_id, fields)
            for topic, items in reply or []
            for entry_id, fields in items
        ]
    entries: list[Entry] = []
    for raw_stream, items in reply or []:
        stream = raw_stream.decode()
        topic = topic_of[stream]
        entries.extend(stream_entry(topic, stream, entry_id, raw) for entry_id, raw in items)
    return entries


def entry_fields(event_id: str, event_type: str, body: bytes, **extra: str | bytes) -> Fields:
    fields: Fields = {"id": event_id, "type": event_type, "event": body}
    fields.update({k: v for k, v in extra.items() if v is not None})
    return fields


class Producer:
    """Appends entries to topics, each stream trimmed to about ``maxlen`` entries; with
    ``partitions`` above 1, an event of a partitioned topic goes to its call's partition."""

    def __init__(self, redis: RedisClient, maxlen: int, partitions: int = 1) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._partitions = partitions
        self._publish_once = redis.register_script(PUBLISH_ONCE)

    def stream(self, topic: str, call_control_id: str | bytes | None) -> str:
        """The stream an event of ``call_control_id`` on ``topic`` is appended to."""
        if self._partitions == 1:
            return topic
        if isinstance(call_control_id, bytes):
            call_control_id = call_control_id.decode()
        return stream_for(topic, call_control_id, self._partitions)

    async def publish(
        self, topic: str, event_id: str, event_type: str, body: bytes, **extra: str | bytes
    ) -> str:
        entry_id = await self._redis.xadd(
            self.stream(topic, extra.get("call_control_id")),
            entry_fields(event_id, event_type, body, **extra),
            maxlen=self._maxlen,
            approximate=True,
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def publish_model(
        self, topic: str, event_id: str, event_type: str, model: BaseModel, **extra: str
    ) -> str:
        return await self.publish(
            topic, event_id, event_type, codec.dumps(model.model_dump(mode="json")), **extra
        )

    async def publish_raw(self, topic: str, fields: Fields) -> str:
        """Append ``fields`` as they are to the stream ``topic`` itself, never a partition (dead
        letters: they keep the original entry's fields, one dead-letter topic per topic)."""
        entry_id = await self._redis.xadd(topic, fields, maxlen=self._maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def publish_once(
        self,
        topic: str,
        event_id: str,
        event_type: str,
        body: bytes,
        window_seconds: int = 86_400,
        **extra: str,
    ) -> str | None:
        """Publish unless ``event_id`` was published on ``topic`` within the window; None when it was.
        With partitions the de-duplication key is the call's partition's: a repeat of the event, of
        the same call, meets it there."""
        return await self.publish_fields_once(
            topic, event_id, entry_fields(event_id, event_type, body, **extra), window_seconds
        )

    async def publish_fields_once(
        self, topic: str, key: str, fields: Fields, window_seconds: int = 86_400
    ) -> str | None:
        """Append ``fields`` unless ``key`` was published on ``topic`` within the window (SET NX
        and XADD in one script, both keys in the stream's hash slot); None when it was. The
        stream is the topic's, or its call's partition (the ``call_control_id`` field)."""
        flat: list[EncodableT] = []
        for name, value in fields.items():
            flat += [name, value]
        call_control_id = fields.get("call_control_id")
        stream = self.stream(
            topic, call_control_id if isinstance(call_control_id, str | bytes) else None
        )
        entry_id = await self._publish_once(
            keys=[stream, dedupe_key(stream, key)], args=[window_seconds, self._maxlen, *flat]
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else None
