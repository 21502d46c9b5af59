"""UDP port pairs for forked calls, leased in Redis so instances never hand out the same port.

A pair (rx = even port, tx = the next) is leased with ``SET NX`` under a key naming the public
host and port, then bound locally: the lease keeps other instances away (even on one host with
overlapping ranges), the bind proves nothing else holds the port. Leases expire unless renewed,
so the ports of an instance that died come back by themselves after ``lease_seconds``.
"""

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from media_ingest.redis_values import text
from voicetap_common.call_control import NoCapacity
from voicetap_sdk.redis_client import RedisClient

LEASE_PREFIX = "{voicetap.ingest}:port:"

# Extends a lease only while it is still ours (it may have expired and been taken meanwhile).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Deletes a lease only while it is still ours (an expired lease may belong to another instance now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# Takes a lease back for a restarted process of the same instance: still ours, or expired and free.
_ADOPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


class PortsExhausted(NoCapacity):
    """Every pair of the range is in use: the instance is at capacity."""


@dataclass(frozen=True, slots=True)
class PortPair:
    rx: int
    tx: int


@dataclass(slots=True)
class Allocation:
    pair: PortPair
    rx_socket: socket.socket
    tx_socket: socket.socket
    owner: str


class PortAllocator:
    def __init__(
        self,
        redis: RedisClient,
        *,
        bind_host: str,
        public_host: str,
        ports: range,
        lease_seconds: int,
        instance: str,
    ) -> None:
        self._redis = redis
        self._bind_host = bind_host
        self._public_host = public_host
        self._pairs = [PortPair(p, p + 1) for p in ports if p % 2 == 0 and p + 1 in ports]
        self._lease = lease_seconds
        self._instance = instance
        self._held: dict[PortPair, str] = {}
        self._cursor = 0
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._adopt = redis.register_script(_ADOPT)

    @property
    def capacity(self) -> int:
        return len(self._pairs)

    @property
    def in_use(self) -> int:
        return len(self._held)

    def _key(self, pair: PortPair) -> str:
        return f"{LEASE_PREFIX}{self._public_host}:{pair.rx}"

    def _candidates(self) -> Iterator[PortPair]:
        """Every pair once, from the cursor on (read once: concurrent allocations move it)."""
        start, count = self._cursor, len(self._pairs)
        for offset in range(count):
            yield self._pairs[(start + offset) % count]

    async def allocate(self, owner: str) -> Allocation:
        """Lease and bind a free pair for ``owner`` (a call_control_id); raises :class:`PortsExhausted`."""
        for pair in self._candidates():
            if pair in self._held:
                continue
            if not await self._redis.set(
                self._key(pair), f"{self._instance}|{owner}", nx=True, ex=self._lease
            ):
                continue
            try:
                rx, tx = _bind(self._bind_host, pair.rx), _bind(self._bind_host, pair.tx)
            except OSError:
                await self._redis.delete(self._key(pair))
                continue
            self._held[pair] = owner
            self._cursor = (self._pairs.index(pair) + 1) % len(self._pairs)
            return Allocation(pair, rx, tx, owner)
        raise PortsExhausted(f"all {len(self._pairs)} port pairs of this instance are in use")

    async def adopt(self, pair: PortPair, owner: str) -> Allocation | None:
        """The pair an earlier process of this instance held for ``owner``, leased and bound
        again (Telnyx still sends there); None when it is another's now, or cannot be bound."""
        if pair not in self._pairs or pair in self._held:
            return None
        value = f"{self._instance}|{owner}"
        if not await self._adopt(keys=[self._key(pair)], args=[value, self._lease]):
            return None
        try:
            rx = _bind(self._bind_host, pair.rx)
        except OSError:
            await self._release(keys=[self._key(pair)], args=[value])
            return None
        try:
            tx = _bind(self._bind_host, pair.tx)
        except OSError:
            rx.close()
            await self._release(keys=[self._key(pair)], args=[value])
            return None
        self._held[pair] = owner
        return Allocation(pair, rx, tx, owner)

    async def release(self, allocation: Allocation) -> None:
        allocation.rx_socket.close()
        allocation.tx_socket.close()
        owner = self._held.pop(allocation.pair, None)
        if owner is not None:
            await self._release(
                keys=[self._key(allocation.pair)], args=[f"{self._instance}|{owner}"]
            )

    async def renew(self) -> list[PortPair]:
        """Extend every lease this instance holds (called periodically); returns the pairs whose lease was lost."""
        lost = []
        for pair, owner in list(self._held.items()):
            if not await self._renew(
                keys=[self._key(pair)], args=[f"{self._instance}|{owner}", self._lease]
            ):
                lost.append(pair)
        return lost

    async def reclaim(self, stale: Callable[[str], bool]) -> int:
        """Delete leases of the range whose holder ``stale(value)`` says is gone (e.g. an earlier
        process of this instance name, killed); returns how many came back."""
        keys = [self._key(pair) for pair in self._pairs if pair not in self._held]
        freed = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for key, value in zip(chunk, await self._redis.mget(chunk), strict=True):
                if value is not None and stale(text(value)):
                    freed += int(await self._release(keys=[key], args=[value]))
        return freed


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
