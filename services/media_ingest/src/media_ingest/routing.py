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

An instance out of port pairs hands a new call's ``call.answered`` to the live instance with the
most free pairs (:meth:`Router.spill`: each instance's free pairs are in ``{voicetap.ingest}:
capacity``, written with its liveness beat), at most ``MAX_SPILLS`` times, so that a worker whose
share of a host's range is full does not fail a call its siblings could take.

This keeps at-least-once delivery and claiming from the shared group for every entry (a fan-out
where every instance reads every lifecycle topic would not), costs one GET per entry, and needs no
list of instances. Playback is the exception (see ``transports.playback``).
"""

import logging
import time
from collections.abc import Callable
from typing import cast

from media_ingest.keys import ALIVE, CAPACITY, INBOX_MAXLEN, inbox, owner_key
from media_ingest.metrics import IngestMetrics
from media_ingest.redis_values import text
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry

log = logging.getLogger("voicetap.media_ingest.routing")

MAX_SPILLS = 3  # hand-overs of one call.answered between instances out of ports
SPILL_CANDIDATES = 8

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
        alive_seconds: float,
        holds: Callable[[str], bool],
    ) -> None:
        """``holds(call_control_id)``: this instance holds the call's media right now;
        ``alive_seconds``: how recent a beat must be for an instance to be handed a call."""
        self._redis = redis
        self._metrics = metrics
        self._instance = instance
        self._lease = lease_seconds
        self._alive = alive_seconds
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

    async def spill(self, entry: Entry) -> str | None:
        """Hand ``entry`` (a new call's ``call.answered``, this instance out of ports) to the live
        instance with the most free port pairs; its name, or None when none has any (or the
        entry was handed over ``MAX_SPILLS`` times already)."""
        spills = int(entry.fields.get("spills", b"0") or 0)
        if spills >= MAX_SPILLS:
            return None
        candidates = cast(
            list[bytes],
            await self._redis.zrevrangebyscore(CAPACITY, "+inf", 1, start=0, num=SPILL_CANDIDATES),
        )
        deadline = time.time() - self._alive
        for name in (text(c) for c in candidates):
            beat = await self._redis.zscore(ALIVE, name) if name != self._instance else None
            if beat is None or beat < deadline:
                continue
            fields: dict[str, bytes | str] = dict(entry.fields)
            fields.update(source_topic=entry.topic, spills=str(spills + 1))
            await self._redis.xadd(inbox(name), fields, maxlen=INBOX_MAXLEN, approximate=True)  # type: ignore[arg-type]
            await self._redis.expire(inbox(name), 3 * self._lease, nx=True)
            log.info("handed a new call to an instance with free ports", extra={"to": name})
            return name
        return None


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
