"""Port pairs leased in a real Redis and bound on real UDP sockets."""

import asyncio
import socket

import pytest
from redis.asyncio import Redis

from media_ingest.ports import PortAllocator, PortsExhausted
from voicetap_cli.embedded_redis import free_port


def free_range(pairs: int) -> range:
    """An even-aligned range whose ports are free right now."""
    for _ in range(50):
        start = free_port() & ~1
        ports = range(start, start + pairs * 2)
        try:
            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in ports]
            for sock, port in zip(socks, ports, strict=True):
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return ports
    raise RuntimeError("no free port range")


def allocator(redis: Redis, ports: range, instance: str, lease: int = 30) -> PortAllocator:
    return PortAllocator(
        redis,
        bind_host="127.0.0.1",
        public_host="127.0.0.1",
        ports=ports,
        lease_seconds=lease,
        instance=instance,
    )


async def test_two_instances_never_hand_out_the_same_port(redis: Redis) -> None:
    ports = free_range(4)
    a, b = allocator(redis, ports, "a"), allocator(redis, ports, "b")
    taken = await asyncio.gather(*(x.allocate(f"call-{i}") for i, x in enumerate([a, b, a, b])))
    assert len({t.pair.rx for t in taken}) == 4
    assert all(t.pair.tx == t.pair.rx + 1 and t.pair.rx % 2 == 0 for t in taken)
    with pytest.raises(PortsExhausted):
        await a.allocate("one-too-many")
    for t in taken[::2]:
        await a.release(t)
    assert (await a.allocate("after-release")).pair in {t.pair for t in taken[::2]}


async def test_a_port_bound_by_someone_else_is_skipped(redis: Redis) -> None:
    ports = free_range(2)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", ports[0]))
    try:
        got = await allocator(redis, ports, "a").allocate("call")
        assert got.pair.rx == ports[2]
        assert await redis.exists(f"{{voicetap.ingest}}:port:127.0.0.1:{ports[0]}") == 0
    finally:
        squatter.close()


async def test_a_dead_instances_ports_come_back_after_the_lease(redis: Redis) -> None:
    ports = free_range(1)
    dead = allocator(redis, ports, "dead", lease=1)
    held = await dead.allocate("call")
    held.rx_socket.close()
    held.tx_socket.close()  # the process died: its sockets are gone, its lease is not renewed
    alive = allocator(redis, ports, "alive")
    with pytest.raises(PortsExhausted):
        await alive.allocate("call-2")
    await asyncio.sleep(1.2)
    assert (await alive.allocate("call-2")).pair == held.pair


async def test_renew_keeps_leases_and_reports_lost_ones(redis: Redis) -> None:
    ports = free_range(2)
    mine = allocator(redis, ports, "mine", lease=1)
    first = await mine.allocate("call-1")
    second = await mine.allocate("call-2")
    await redis.set(f"{{voicetap.ingest}}:port:127.0.0.1:{second.pair.rx}", "other|x")
    await asyncio.sleep(0.6)
    assert await mine.renew() == [second.pair]
    await asyncio.sleep(0.6)
    assert await redis.exists(f"{{voicetap.ingest}}:port:127.0.0.1:{first.pair.rx}") == 1
    await mine.release(first)
    await mine.release(second)
