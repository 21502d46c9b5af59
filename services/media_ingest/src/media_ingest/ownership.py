"""Which instance holds a call, and proof that this one is alive: keys renewed with the port leases.

``{voicetap.ingest}:call:<id>`` names the holder of a call's media; it is set when the call is set
up here and renewed by :meth:`Ownership.heartbeat`, so it vanishes with a dead instance, as do the
instance's own key and its inbox.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from media_ingest.keys import INSTANCE_PREFIX, TOKEN_PREFIX, inbox, owner_key
from media_ingest.ports import PortAllocator
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient

log = logging.getLogger("voicetap.media_ingest.ownership")


class Ownership:
    def __init__(
        self,
        redis: RedisClient,
        allocator: PortAllocator,
        *,
        instance: str,
        lease_seconds: int,
        held_calls: Callable[[], Iterable[str]],
    ) -> None:
        self._redis = redis
        self._allocator = allocator
        self.instance = instance
        self.lease = lease_seconds
        self._held_calls = held_calls

    async def claim(self, call_control_id: str) -> None:
        await self._redis.set(owner_key(call_control_id), self.instance, ex=self.lease)

    async def heartbeat(self) -> None:
        """Renew this instance's name, its port leases and its calls' holder keys."""
        lost = await self._allocator.renew()
        if lost:
            log.warning(
                "port leases lost (Redis lost them?)", extra={"pairs": [p.rx for p in lost]}
            )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(INSTANCE_PREFIX + self.instance, str(time.time()), ex=self.lease)
            pipe.expire(inbox(self.instance), 3 * self.lease)
            for call_control_id in self._held_calls():
                pipe.set(owner_key(call_control_id), self.instance, ex=self.lease)
            await pipe.execute()

    async def drop_ended(self, call_control_id: str) -> None:
        """A finished call's holder key and stream token go (or expire if Redis is away)."""
        try:
            await self._redis.delete(owner_key(call_control_id), TOKEN_PREFIX + call_control_id)
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "could not drop the call's keys (they expire)",
                extra={"call_control_id": call_control_id, "error": str(exc)},
            )

    async def drop_discarded(self, call_control_id: str) -> None:
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self._redis.delete(owner_key(call_control_id))

    async def resign(self) -> None:
        """The instance stops: its name and inbox go."""
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self._redis.delete(INSTANCE_PREFIX + self.instance, inbox(self.instance))
