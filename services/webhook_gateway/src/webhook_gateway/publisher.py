"""Publishing verified webhooks: de-duplicated on ``data.id``, atomic, round trips shared.

One Lua script per event (``voicetap_sdk.streams.PUBLISH_ONCE``) checks the de-duplication
key and appends to the stream (the topic, or the call's partition of it) in one atomic step (both
keys share the stream's hash slot, so this holds on Redis Cluster too). Requests that
arrive while a pipeline is in flight wait for the next one, so under load many webhooks share a
single round trip, and with one request at a time nothing waits.

A webhook about an erased call (``voicetap_common.erasure``) is not appended. On a single server
the script checks the call's tombstone itself (one round trip per batch, as before erasure
existed). On a cluster a tombstone lives in its own slot, not the stream's, so the script cannot
read it: the tombstones of a batch's calls are read first, in one pipeline of EXISTS, and only the
others go on to the script (two round trips per batch, whatever its size).

On Redis Cluster the pipeline is split by node (one round trip to each node, concurrently), and
SCRIPT LOAD goes to every primary. A node that restarted has lost its script cache while the
others have not: only the publications that met NOSCRIPT are sent again, after the load, so one
that was stored is never run a second time (it would read as a duplicate).
"""

import asyncio
import enum
from dataclasses import dataclass

from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError

from voicetap_common.erasure import tombstone_key
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import PUBLISH_ONCE
from voicetap_sdk.topics import dedupe_key

# PUBLISH_ONCE with the call's tombstone (KEYS[3], when there is one) checked first: -1 if erased.
# Single server only: the keys are in different hash slots.
_PUBLISH_UNLESS_ERASED = (
    "if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then\n  return -1\nend\n" + PUBLISH_ONCE
)


@dataclass(frozen=True, slots=True)
class Publication:
    stream: str  # the topic, or the call's partition of it; the de-duplication key shares its slot
    event_id: str
    fields: tuple[bytes | str, ...]  # flattened field/value pairs
    call_control_id: str | None = None  # its tombstone is checked first


class Erased(enum.Enum):
    """The outcome of a publication about an erased call: acknowledged, not stored."""

    ERASED = "erased"


ERASED = Erased.ERASED


class PublishBatcher:
    """Shares Redis round trips between concurrent publications."""

    def __init__(
        self, redis: RedisClient, *, dedupe_window_seconds: int, maxlen: int, timeout_seconds: float
    ) -> None:
        self._redis = redis
        self._window = dedupe_window_seconds
        self._maxlen = maxlen
        self._timeout = timeout_seconds
        self._sha: str | None = None
        self._cluster = isinstance(redis, RedisCluster)
        self._script = PUBLISH_ONCE if self._cluster else _PUBLISH_UNLESS_ERASED
        self._queue: list[tuple[Publication, asyncio.Future[str | Erased | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.last_batch_size = 0

    async def publish(
        self, publication: Publication, deadline_seconds: float
    ) -> str | Erased | None:
        """The new entry id, None when ``publication.event_id`` was already published, or
        :data:`ERASED` when its call is erased.

        Raises ``TimeoutError`` when Redis did not confirm within ``deadline_seconds``, and the
        Redis error when it failed; either way it may still be stored, which a re-delivery then
        finds as a duplicate.
        """
        future: asyncio.Future[str | Erased | None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve_exception)
        self._queue.append((publication, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        async with asyncio.timeout(
            deadline_seconds
        ):  # cancels the future; the flusher skips it then
            return await future

    async def _flush(self) -> None:
        while self._queue:
            batch = [
                (p, f) for p, f in self._queue if not f.done()
            ]  # a timed-out request was answered 503
            self._queue = []
            if not batch:
                continue
            self.last_batch_size = len(batch)
            try:
                results = await asyncio.wait_for(self._send([p for p, _ in batch]), self._timeout)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else ConnectionError(str(exc))
                        )
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                elif result is ERASED:
                    future.set_result(ERASED)
                else:
                    future.set_result(result.decode() if isinstance(result, bytes) else None)

    async def _send(
        self, publications: list[Publication]
    ) -> list[bytes | Erased | None | Exception]:
        if not self._cluster:
            return [  # the script's -1: the call is erased
                ERASED if isinstance(result, int) else result
                for result in await self._store(publications)
            ]
        erased = await self._erased(publications)
        kept = [i for i in range(len(publications)) if i not in erased]
        stored = await self._store([publications[i] for i in kept])
        results: list[bytes | Erased | None | Exception] = [ERASED] * len(publications)
        for i, result in zip(kept, stored, strict=True):
            results[i] = ERASED if isinstance(result, int) else result  # (no -1 on a cluster)
        return results

    async def _erased(self, publications: list[Publication]) -> set[int]:
        """The positions of the publications whose call is tombstoned."""
        about = [(i, p.call_control_id) for i, p in enumerate(publications) if p.call_control_id]
        if not about:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, call_control_id in about:
                pipe.exists(tombstone_key(call_control_id))
            found = await pipe.execute()
        return {i for (i, _), exists in zip(about, found, strict=True) if exists}

    async def _store(self, publications: list[Publication]) -> list[bytes | int | None | Exception]:
        if not publications:
            return []
        if self._sha is None:
            self._sha = await self._redis.script_load(self._script)
        results = await self._pipeline(self._sha, publications)
        lost = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if lost:  # Redis (or a node of the cluster) restarted and lost its script cache
            self._sha = await self._redis.script_load(self._script)
            retried = await self._pipeline(self._sha, [publications[i] for i in lost])
            for i, result in zip(lost, retried, strict=True):
                results[i] = result
        return results

    async def _pipeline(
        self, sha: str, publications: list[Publication]
    ) -> list[bytes | int | None | Exception]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in publications:
                keys = [p.stream, dedupe_key(p.stream, p.event_id)]
                if p.call_control_id and not self._cluster:
                    keys.append(tombstone_key(p.call_control_id))
                # The raw command, which is what ``pipe.evalsha`` sends: redis-py's cluster pipeline
                # refuses that method, as a node may lack the script; ``_send`` handles NOSCRIPT.
                pipe.execute_command(
                    "EVALSHA",
                    sha,
                    len(keys),
                    *keys,
                    self._window,
                    self._maxlen,
                    *p.fields,
                )
            return await pipe.execute(raise_on_error=False)


def _retrieve_exception(future: asyncio.Future[str | Erased | None]) -> None:
    """Mark an outcome nobody waits for any more (its request already answered 503) as seen."""
    if not future.cancelled():
        future.exception()
