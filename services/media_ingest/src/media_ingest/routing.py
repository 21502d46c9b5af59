"""Routing between instances: an entry about a call another live instance holds goes to its inbox.

A call's media state (sockets, jitter buffers, the WAV being written) lives in the one process
that set it up. Whoever takes an entry about a call therefore first asks Redis who holds it:

- ``{voicetap.ingest}:call:<call_control_id>`` names the holding instance (see ``ownership``);
- each instance consumes its own inbox stream ``{voicetap.ingest}:inbox:<instance>`` (same group
  name); an entry about a call held elsewhere is appended there, unchanged plus ``source_topic``,
  by a script that first checks the holder is still the same (one hash tag: one slot on Redis
  Cluster), and acknowledged by the forwarder. The holder then handles it as if it had read it.
- An entry about a call nobody holds is handled where it is: a command runs there (a
  ``fork_start`` there makes that instance the holder), a hang-up leaves a tombstone so that a late
  ``call.answered`` does not start media for an ended call.

This keeps at-least-once delivery and claiming from the shared group for every entry (a fan-out
where every instance reads every lifecycle topic would not), costs one GET per entry, and needs no
list of instances. Playback is the exception (see ``transports.playback``).
"""

import logging
from collections.abc import Callable

from media_ingest.keys import INBOX_MAXLEN, inbox, owner_key
from media_ingest.metrics import IngestMetrics
from media_ingest.redis_values import text
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry

log = logging.getLogger("voicetap.media_ingest.routing")

# KEYS: the call's holder key, the holder's inbox. ARGV: expected holder, inbox ttl, maxlen, fields.
_FORWARD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*'}
for i = 4, #ARGV do
  args[#args + 1] = ARGV[i]
end
redis.call(unpack(args))
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


class Router:
    def __init__(
        self,
        redis: RedisClient,
        metrics: IngestMetrics,
        *,
        instance: str,
        lease_seconds: int,
        holds: Callable[[str], bool],
    ) -> None:
        """``holds(call_control_id)``: this instance holds the call's media right now."""
        self._redis = redis
        self._metrics = metrics
        self._instance = instance
        self._lease = lease_seconds
        self._holds = holds
        self._forward = redis.register_script(_FORWARD)

    async def forwarded(self, entry: Entry, call_control_id: str) -> bool:
        """True when another live instance holds the call and the entry went to its inbox."""
        if self._holds(call_control_id):
            return False
        holder = await self._redis.get(owner_key(call_control_id))
        if holder is None:
            return False
        holder_name = text(holder)
        if holder_name == self._instance:
            return False
        fields: list[bytes | str] = []
        for name, value in entry.fields.items():
            fields += [name, value]
        fields += ["source_topic", entry.topic, "source_id", entry.entry_id]
        forwarded = await self._forward(
            keys=[owner_key(call_control_id), inbox(holder_name)],
            args=[holder_name, 3 * self._lease, INBOX_MAXLEN, *fields],
        )
        if forwarded:
            self._metrics.forwarded.labels(entry.topic).inc()
            log.debug(
                "forwarded to the holding instance",
                extra={
                    "call_control_id": call_control_id,
                    "holder": holder_name,
                    "topic": entry.topic,
                },
            )
        return bool(forwarded)


def entry_call(entry: Entry) -> str | None:
    """The call an entry is about: its ``call_control_id`` field, else its command or webhook body."""
    value = entry.fields.get("call_control_id")
    if value:
        return str(value.decode())
    try:
        body = entry.json()
    except codec.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("call_control_id"), str):  # a command
        return str(body["call_control_id"])
    payload = (body.get("data") or {}).get("payload") or {}
    found = payload.get("call_control_id") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None
