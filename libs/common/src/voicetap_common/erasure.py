"""Retention and erasure: the events, tombstones, topic sweep and waiting that every part shares.

An erasure is a request on ``voicetap.erasure.requested`` (one call, or every call from or to one
number) that each service executes for its own part, idempotently, through a consumer group (a
part that dies half-way leaves the entry pending; the group claims and redoes it):

- transcript_indexer (group ``transcript_indexer.erasure``) resolves the request to call ids (only
  it knows which calls a number made), tombstones them, deletes their rows and full-text entries and
  their live transcript streams, removes their entries from every topic (dead letters included),
  publishes ``voicetap.call.erased`` (``voicetap.call.expired`` for retention) once per call, then
  its part on ``voicetap.erasure.progress``, naming the call ids;
- every media_ingest instance follows the indexer's parts through a group of its own on
  ``voicetap.erasure.progress`` (each holds its own recordings): it stops recording those calls,
  deletes their recordings, sweeps the topics again for the media events it wrote meanwhile, and
  publishes its part.

The requester (``voicetap erase``, ``DELETE /calls/{id}``, the retention sweeper) publishes the
request and waits for the parts (:func:`request_erasure`). Every event here carries ids only, never
what was said.
"""

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from pydantic import ValidationError

from voicetap_sdk import codec
from voicetap_sdk.erasure_events import (
    ErasureProgress,
    ErasureRequest,
    GoneTopic,
    Reason,
)
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Producer, RawEntries, Reply, entries_of
from voicetap_sdk.topics import (
    CALL_ERASED,
    CALL_EXPIRED,
    ERASURE_PROGRESS,
    ERASURE_REQUESTED,
    dlq_topic,
)

TOMBSTONE_PREFIX = "voicetap:erased:"
INDEXER_PART = "transcript_indexer"
RECORDINGS_PART_PREFIX = "media_ingest.erasure:"
"""The group (and part name) of one media_ingest instance on ``voicetap.erasure.progress``."""
PARTICIPANT_PREFIX = "voicetap:erasure:participant:"

# Topics that hold ids only (the erasure's own bookkeeping): never swept.
ERASURE_TOPICS = frozenset(
    name
    for topic in (ERASURE_REQUESTED, ERASURE_PROGRESS, CALL_ERASED, CALL_EXPIRED)
    for name in (topic, dlq_topic(topic))
)
SWEEP_CHUNK = 1000
_READ_BLOCK_MS = 500


def gone_topic(reason: Reason) -> GoneTopic:
    return CALL_EXPIRED if reason == "expired" else CALL_ERASED


def new_request_id() -> str:
    return f"erasure:{uuid.uuid4()}"


def tombstone_key(call_control_id: str) -> str:
    """Set while a call counts as erased: a late event about it is acknowledged and not stored.
    Its own slot on a cluster: it is checked with EXISTS before an append, never inside a script."""
    return TOMBSTONE_PREFIX + call_control_id


async def set_tombstones(redis: RedisClient, call_ids: Iterable[str], ttl_seconds: int) -> None:
    for call_id in call_ids:
        await redis.set(tombstone_key(call_id), b"1", ex=ttl_seconds)


async def erased_among(redis: RedisClient, call_ids: Iterable[str]) -> set[str]:
    """Those of ``call_ids`` that are tombstoned (one pipeline; keys on any node of a cluster)."""
    ids = sorted(set(call_ids))
    if not ids:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for call_id in ids:
            pipe.exists(tombstone_key(call_id))
        found = await pipe.execute()
    return {call_id for call_id, exists in zip(ids, found, strict=True) if exists}


async def sweep_topics(redis: RedisClient, call_ids: Iterable[str]) -> int:
    """Delete every entry about ``call_ids`` from every stream (topics, their partitions, dead-letter
    topics, internal streams), but the erasure's own topics. An entry is about a call when its
    ``call_control_id`` field names it or its body mentions the id (dead letters of bodies that never
    parsed, command results). Returns how many entries went. A full read of every stream: erasure
    is rare, and a stream has no index by call."""
    ids = {call_id.encode() for call_id in call_ids}
    if not ids:
        return 0
    removed = 0
    async for raw in redis.scan_iter(count=1000, _type="stream"):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name in ERASURE_TOPICS:
            continue
        removed += await _sweep_stream(redis, name, ids)
    return removed


async def _sweep_stream(redis: RedisClient, stream: str, ids: set[bytes]) -> int:
    removed = 0
    start: bytes = b"-"
    while True:
        chunk = cast(RawEntries, await redis.xrange(stream, min=start, max="+", count=SWEEP_CHUNK))
        doomed = [
            entry_id
            for entry_id, fields in chunk
            if fields.get(b"call_control_id") in ids
            or any(call_id in fields.get(b"event", b"") for call_id in ids)
        ]
        if doomed:
            removed += int(await redis.xdel(stream, *doomed))
        if len(chunk) < SWEEP_CHUNK:
            return removed
        start = b"(" + chunk[-1][0]


@dataclass(slots=True)
class ErasureOutcome:
    """What the requester learnt: the calls, what went (summed over the parts), who did not answer."""

    request_id: str
    call_control_ids: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, part: ErasureProgress) -> None:
        self.answered.append(part.part)
        if part.part == INDEXER_PART:
            self.call_control_ids = part.call_control_ids
        for kind, count in part.removed.items():
            self.removed[kind] = self.removed.get(kind, 0) + count


def participant_key(part: str) -> str:
    """Kept alive (with a short TTL) by a part that runs now: what a requester waits for."""
    return PARTICIPANT_PREFIX + part


async def live_parts(redis: RedisClient) -> list[str]:
    """The parts besides the indexer's that run now (one per media_ingest instance)."""
    found = set()
    async for raw in redis.scan_iter(match=PARTICIPANT_PREFIX + "*", count=1000):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        found.add(name.removeprefix(PARTICIPANT_PREFIX))
    return sorted(found)


async def request_erasure(
    redis: RedisClient,
    producer: Producer,
    request: ErasureRequest,
    *,
    tombstone_seconds: int,
    timeout_seconds: float,
) -> ErasureOutcome:
    """Publish ``request`` and wait up to ``timeout_seconds`` for every part: the indexer's, then one
    per media_ingest instance up now. A call's tombstone is set at once, before any part runs, so that
    nothing about it is stored from now on. ``missing`` names the parts that did not answer."""
    expected = [INDEXER_PART, *await live_parts(redis)]
    last = cast(RawEntries, await redis.xrevrange(ERASURE_PROGRESS, count=1))
    position = last[0][0].decode() if last else "0-0"
    if request.call_control_id:
        await set_tombstones(redis, [request.call_control_id], tombstone_seconds)
    await producer.publish_model(ERASURE_REQUESTED, request.id, ERASURE_REQUESTED, request)
    outcome = ErasureOutcome(request.id)
    deadline = time.monotonic() + timeout_seconds
    while set(expected) - set(outcome.answered):
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            break
        reply = cast(
            Reply,
            await redis.xread(
                {ERASURE_PROGRESS: position}, count=100, block=min(left_ms, _READ_BLOCK_MS)
            ),
        )
        for entry in entries_of(reply):
            position = entry.entry_id
            try:
                part = ErasureProgress.model_validate(codec.loads(entry.body))
            except (ValidationError, codec.JSONDecodeError):
                continue
            if part.request_id == request.id and part.part not in outcome.answered:
                outcome.add(part)
        await asyncio.sleep(0)
    outcome.missing = [part for part in expected if part not in outcome.answered]
    return outcome
