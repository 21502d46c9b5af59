"""The console process's one topic reader: call events, analytics and transcripts into the hub.

It reads with plain ``XREAD`` (no consumer group: every console process sees every entry, and
acknowledges nothing, as a viewer should). At start it reads back the call events of the last
``history_seconds`` so that calls already running and recently ended appear at once; analytics and
transcripts are followed from "now" only (the board keeps their latest state, not their history).
On Redis Cluster the streams are grouped by hash slot, one read loop per slot.
"""

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import RedisCluster

from voicetap_console.hub import Hub
from voicetap_sdk.backoff import Backoff
from voicetap_sdk.codec import loads
from voicetap_sdk.partitions import topic_of_streams
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient, keys_by_slot
from voicetap_sdk.topics import (
    CALL_ANSWERED,
    CALL_FORK_STARTED,
    CALL_HANGUP,
    CALL_INITIATED,
    CALL_TRANSCRIPTION,
    MEDIA_ANALYTICS,
    MEDIA_ERROR,
    RECORDING_COMPLETED,
    STREAMING_FAILED,
    STREAMING_STARTED,
)

log = logging.getLogger("voicetap.console.reader")

HISTORY_TOPICS = (
    CALL_INITIATED,
    CALL_ANSWERED,
    CALL_HANGUP,
    CALL_FORK_STARTED,
    STREAMING_STARTED,
    STREAMING_FAILED,
    RECORDING_COMPLETED,
    MEDIA_ERROR,
)
LIVE_TOPICS = (MEDIA_ANALYTICS, CALL_TRANSCRIPTION)
HISTORY_LIMIT = 20_000  # entries per stream read back at start, the newest
BLOCK_MS = 1000


class TopicReader:
    def __init__(
        self,
        redis: RedisClient,
        hub: Hub,
        *,
        partitions: int,
        history_seconds: float,
        block_ms: int = BLOCK_MS,
        batch: int = 1000,
    ) -> None:
        self._redis = redis
        self._hub = hub
        self._history_s = history_seconds
        self._block_ms = block_ms
        self._batch = batch
        self._history = topic_of_streams(HISTORY_TOPICS, partitions)
        self._topic_of = {**self._history, **topic_of_streams(LIVE_TOPICS, partitions)}
        self._backoff = Backoff("redis", log)
        self.malformed = 0

    async def run(self, stop: asyncio.Event) -> None:
        positions = await self._catch_up(stop)
        if positions is None:
            return
        self._hub.caught_up.set()
        streams = list(self._topic_of)
        groups = (
            keys_by_slot(self._redis, streams)
            if isinstance(self._redis, RedisCluster)
            else [streams]
        )
        async with asyncio.TaskGroup() as tasks:
            for group in groups:
                tasks.create_task(self._follow(group, positions, stop))

    async def _catch_up(self, stop: asyncio.Event) -> dict[str, str] | None:
        """Every stream's current position, after the call events of the history window."""
        while not stop.is_set():
            try:
                positions, entries = await self._read_back()
                self._backoff.succeeded()
            except REDIS_UNAVAILABLE as exc:
                await self._backoff.failed(exc, stop)
                continue
            for _, topic, fields in sorted(entries, key=lambda e: _id_key(e[0])):
                self._apply(topic, fields)
            self._hub.flush()
            return positions
        return None

    async def _read_back(
        self,
    ) -> tuple[dict[str, str], list[tuple[str, str, Mapping[bytes, bytes]]]]:
        since = f"{int((time.time() - self._history_s) * 1000)}-0"
        positions: dict[str, str] = {}
        entries: list[tuple[str, str, Mapping[bytes, bytes]]] = []
        for stream, topic in self._topic_of.items():
            newest: Any = await self._redis.xrevrange(stream, count=1)
            positions[stream] = newest[0][0].decode() if newest else "0-0"
            if stream not in self._history or not newest:
                continue
            found: Any = await self._redis.xrevrange(
                stream, max=positions[stream], min=since, count=HISTORY_LIMIT
            )
            entries.extend((entry_id.decode(), topic, fields) for entry_id, fields in found)
        return positions, entries

    async def _follow(
        self, streams: Sequence[str], positions: dict[str, str], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                reply: Any = await self._redis.xread(
                    {s: positions[s] for s in streams}, count=self._batch, block=self._block_ms
                )
                self._backoff.succeeded()
            except REDIS_UNAVAILABLE as exc:
                await self._backoff.failed(exc, stop)
                continue
            for raw_stream, items in reply or []:
                stream = raw_stream.decode()
                for entry_id, fields in items:
                    positions[stream] = entry_id.decode()
                    self._apply(self._topic_of[stream], fields)

    def _apply(self, topic: str, fields: Mapping[bytes, bytes]) -> None:
        try:
            event = loads(fields.get(b"event", b""))
            if not isinstance(event, dict):
                raise ValueError("the event is not a JSON object")
            self._hub.apply(topic, event)
        except (ValueError, TypeError, AttributeError) as exc:
            self.malformed += 1
            if self.malformed == 1 or self.malformed % 1000 == 0:
                log.warning(
                    "entries the console cannot read skipped",
                    extra={"topic": topic, "skipped": self.malformed, "error": type(exc).__name__},
                )


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)
