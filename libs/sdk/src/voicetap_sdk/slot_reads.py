"""A consumer group's reads on Redis Cluster: one blocking XREADGROUP per hash slot, all in flight.

A cluster refuses one XREADGROUP over streams of different slots (``CROSSSLOT``), so the streams
(the topics, or their partitions) are grouped by slot and each group is read by its own
XREADGROUP, sent straight to the node that serves the slot. :meth:`SlotReads.read` keeps one read
in flight per slot, each blocking no longer than the call's own deadline, and returns as soon as
any of them brings entries, or with nothing once the block time has passed: the block time is
shared, and no slot waits behind another's. A read still in flight then stays in flight (for the
rest of that block time at most); whatever it brings comes with a later call. Its entries are
pending under this consumer from the moment the node delivered them, like any read entries:
claimable by the group should the reader die, never acknowledged before they were handled.
"""

import asyncio
from collections.abc import Mapping, Sequence

from redis.asyncio import RedisCluster

from voicetap_sdk.redis_client import keys_by_slot
from voicetap_sdk.streams import Entry, entries_of


class SlotReads:
    def __init__(
        self, redis: RedisCluster, group: str, consumer: str, streams: Sequence[str], topic_of: Mapping[str, str] | None,
        *, count: int, block_ms: int,
    ) -> None:  # fmt: skip
        """``topic_of``: each partition stream's topic (``entries_of``); None when every stream is a topic."""
        self._redis = redis
        self._group = ("GROUP", group, consumer, "COUNT", count)
        self._block_s = block_ms / 1000
        self._topic_of = topic_of
        self._slots = keys_by_slot(redis, streams)
        self._in_flight: dict[int, asyncio.Task[list[Entry]]] = {}

    async def read(self) -> list[Entry]:
        """What the reads that came back brought, waiting up to the block time for one with entries.

        A read that failed raises its error, unless others brought entries (it is sent again with
        the next call); the reads still in flight stay in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._block_s
        while True:
            entries = self._take_done()
            remaining = deadline - loop.time()
            if entries or remaining <= 0:
                return entries
            block_ms = max(int(remaining * 1000), 1)  # 0 would block for ever
            for index, streams in enumerate(self._slots):
                if index not in self._in_flight:
                    self._in_flight[index] = asyncio.create_task(self._read_slot(streams, block_ms))
            await asyncio.wait(
                self._in_flight.values(), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )

    async def drain(self) -> list[Entry]:
        """Wait for every read in flight (the block time at most) and return what they brought."""
        if self._in_flight:
            await asyncio.wait(self._in_flight.values())
        return self._take_done()

    def abandon(self) -> None:
        """Cancel the reads in flight: what they read stays pending under this consumer, to be claimed."""
        for task in self._in_flight.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # marked as seen: an abandoned failed read is no unhandled error
        self._in_flight.clear()

    def _take_done(self) -> list[Entry]:
        entries: list[Entry] = []
        error: BaseException | None = None
        for index, task in list(self._in_flight.items()):
            if not task.done():
                continue
            del self._in_flight[index]
            if task.cancelled():
                continue
            if (failure := task.exception()) is not None:
                error = error or failure
            else:
                entries.extend(task.result())
        if error is not None and not entries:
            raise error
        return entries

    async def _read_slot(self, streams: list[str], block_ms: int) -> list[Entry]:
        # Sent to the slot's node directly: redis-py would otherwise ask a node (COMMAND GETKEYS)
        # where the keys of every XREADGROUP are. A MOVED answer is still followed.
        reply = await self._redis.execute_command(
            "XREADGROUP",
            *self._group,
            "BLOCK",
            block_ms,
            "STREAMS",
            *streams,
            *(">" for _ in streams),
            target_nodes=self._redis.get_node_from_key(streams[0]),
        )
        return entries_of(reply, self._topic_of)
