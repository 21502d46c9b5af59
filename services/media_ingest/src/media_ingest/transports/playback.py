"""Audio going back into streamed calls: ``voicetap.media.playback`` to the call's WebSocket.

Any consumer writes playback for a call; only the instance holding that call's WebSocket can send
it. Every instance therefore tails the topic (``XREAD``, no group: a fan-out, from "now") and acts
on the entries of calls whose stream it holds, in the topic's order. A consumer group would hand
consecutive chunks of one call to different instances and lose their order on the way to the
holder. Playback is live: what was written while no instance held the call is not replayed.
"""

import asyncio
import logging
from typing import Protocol, cast

from pydantic import ValidationError

from voicetap_sdk.backoff import Backoff
from voicetap_sdk.media_events import PlaybackRequest
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.topics import MEDIA_PLAYBACK

log = logging.getLogger("voicetap.media_ingest.playback")


class PlaybackTarget(Protocol):
    """A stream that can play into its call (``StreamSession``)."""

    @property
    def call_control_id(self) -> str: ...
    def send(self, request: PlaybackRequest) -> None: ...


class PlaybackRouter:
    def __init__(self, redis: RedisClient, *, block_ms: int = 1000, batch: int = 500) -> None:
        self._redis = redis
        self._block_ms = block_ms
        self._batch = batch
        self._sessions: dict[str, PlaybackTarget] = {}
        self.ignored = 0

    def register(self, session: PlaybackTarget) -> None:
        self._sessions[session.call_control_id] = session

    def unregister(self, session: PlaybackTarget) -> None:
        if self._sessions.get(session.call_control_id) is session:
            del self._sessions[session.call_control_id]

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        last_id: str | None = None
        backoff = Backoff("redis (playback)", log, first=0.2, cap=5.0)
        while not stop.is_set():
            try:
                if last_id is None:
                    newest = cast(  # the client never decodes: ids and fields are bytes
                        list[tuple[bytes, dict[bytes, bytes]]],
                        await self._redis.xrevrange(MEDIA_PLAYBACK, count=1),
                    )
                    last_id = newest[0][0].decode() if newest else "0-0"
                    if started is not None:
                        started.set()
                reply = cast(  # RESP2, bytes: [(stream, [(id, fields), ...])] or None
                    list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
                    await self._redis.xread(
                        {MEDIA_PLAYBACK: last_id}, count=self._batch, block=self._block_ms
                    ),
                )
            except REDIS_UNAVAILABLE as exc:
                await backoff.failed(exc, stop)
                continue
            backoff.succeeded()
            for _, items in reply or []:
                for entry_id, fields in items:
                    last_id = entry_id.decode()
                    self._dispatch(fields)

    def _dispatch(self, fields: dict[bytes, bytes]) -> None:
        ccid = fields.get(b"call_control_id", b"").decode()
        session = self._sessions.get(ccid)
        if session is None:
            return
        try:
            request = PlaybackRequest.model_validate_json(fields.get(b"event", b"{}"))
        except ValidationError as exc:
            self.ignored += 1
            log.info(
                "malformed playback entry ignored",
                extra={"call_control_id": ccid, "error": str(exc)[:300]},
            )
            return
        if request.call_control_id not in (None, ccid):
            self.ignored += 1
            return
        session.send(request)
