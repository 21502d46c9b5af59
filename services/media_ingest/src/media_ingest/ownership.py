"""Which instance holds a call, and proof that this one is alive.

- ``{voicetap.ingest}:call:<id>`` names the holder of a call's media; set when the call is set up
  here and renewed by :meth:`Ownership.heartbeat` (with the port leases), so it vanishes with a
  dead instance, as do the instance's own key and its inbox;
- ``{voicetap.ingest}:held:<instance>`` lists the instance's live calls with what a takeover needs
  of each (when the call started, which part this is, what media feeds it), kept current by
  :meth:`Ownership.note` at each transition and by the heartbeat;
- ``{voicetap.ingest}:alive`` holds each instance's last liveness beat (:meth:`Ownership.beat`,
  several per ``INGEST_TAKEOVER_SECONDS``): an instance silent past that loses its live calls to
  the others (``media_ingest.takeover``).
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from media_ingest.calls.call import Call
from media_ingest.keys import (
    ALIVE,
    CAPACITY,
    INSTANCE_PREFIX,
    TOKEN_PREFIX,
    held_key,
    inbox,
    owner_key,
    taken_key,
)
from media_ingest.ports import PortAllocator
from voicetap_sdk import codec
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient

log = logging.getLogger("voicetap.media_ingest.ownership")

TAKEN_AT_ONCE = 100_000  # more calls than an instance holds


def held_facts(call: Call) -> dict[str, Any]:
    """What another instance needs to take the call over."""
    return {
        "started_at": call.started_at,
        "part": call.part,
        "file_start": call.file_start,
        "parts": call.earlier_parts,
        "live": call.live_media(),
    }


class Ownership:
    def __init__(
        self,
        redis: RedisClient,
        allocator: PortAllocator,
        *,
        instance: str,
        lease_seconds: int,
        held_calls: Callable[[], Iterable[Call]],
    ) -> None:
        self._redis = redis
        self._allocator = allocator
        self.instance = instance
        self.lease = lease_seconds
        self._held_calls = held_calls

    async def claim(self, call_control_id: str) -> None:
        await self._redis.set(owner_key(call_control_id), self.instance, ex=self.lease)

    async def note(self, call: Call) -> None:
        """The call's takeover facts as they are now (a transition: set up, paused, resumed)."""
        with contextlib.suppress(*REDIS_UNAVAILABLE):  # the heartbeat writes them again
            await self._redis.hset(
                held_key(self.instance), call.call_control_id, codec.dumps(held_facts(call))
            )

    async def beat(self) -> list[str]:
        """This instance is alive (a survivor takes the calls of one silent too long), and has
        this many free port pairs (an instance out of them hands a new call to one that has).
        Returns the calls taken from it meanwhile: it was not dead, only stalled past the takeover
        period, and must let them go (``CallEndings.surrender``)."""
        free = self._allocator.capacity - self._allocator.in_use
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(ALIVE, {self.instance: time.time()})
            pipe.zadd(CAPACITY, {self.instance: free})
            pipe.spop(taken_key(self.instance), TAKEN_AT_ONCE)  # atomic: each is said once
            taken = (await pipe.execute())[2] or []
        return sorted(value.decode() if isinstance(value, bytes) else value for value in taken)

    async def heartbeat(self) -> None:
        """Renew this instance's name, its port leases and its calls' holder keys and facts."""
        lost = await self._allocator.renew()
        if lost:
            log.warning(
                "port leases lost (Redis lost them?)", extra={"pairs": [p.rx for p in lost]}
            )
        calls = list(self._held_calls())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(INSTANCE_PREFIX + self.instance, str(time.time()), ex=self.lease)
            pipe.expire(inbox(self.instance), 3 * self.lease)
            for call in calls:
                pipe.set(owner_key(call.call_control_id), self.instance, ex=self.lease)
            if calls:
                pipe.hset(
                    held_key(self.instance),
                    mapping={c.call_control_id: codec.dumps(held_facts(c)) for c in calls},
                )
            await pipe.execute()

    async def drop_ended(self, call_control_id: str) -> None:
        """A finished call's holder key, facts and stream token go (or expire if Redis is away)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(owner_key(call_control_id), TOKEN_PREFIX + call_control_id)
                pipe.hdel(held_key(self.instance), call_control_id)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "could not drop the call's keys (they expire)",
                extra={"call_control_id": call_control_id, "error": str(exc)},
            )

    async def drop_discarded(self, call_control_id: str) -> None:
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(owner_key(call_control_id))
                pipe.hdel(held_key(self.instance), call_control_id)
                await pipe.execute()

    async def resign(self) -> None:
        """The instance stops (its calls finished): its name, inbox, facts and beat go."""
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(INSTANCE_PREFIX + self.instance, inbox(self.instance))
                pipe.delete(held_key(self.instance))
                pipe.zrem(ALIVE, self.instance)
                pipe.zrem(CAPACITY, self.instance)
                await pipe.execute()
