"""The call side of media-stream WebSockets: the token check, and a session attached to its call
(created here if it is new) and to playback. The endpoint (``transports.stream_endpoint``) sees
only this, through its ``StreamGate`` Protocol."""

import time

from starlette.websockets import WebSocket

from media_ingest.calls.registry import CallRegistry
from media_ingest.events import ErrorReporter, EventPublisher
from media_ingest.locks import CallLocks
from media_ingest.metrics import IngestMetrics
from media_ingest.ownership import Ownership
from media_ingest.protocol.codecs import CodecSpec
from media_ingest.protocol.payload_table import PayloadTable
from media_ingest.tokens import StreamTokens
from media_ingest.transports.playback import PlaybackRouter
from media_ingest.transports.stream_session import StreamSession


class StreamCalls:
    def __init__(
        self,
        registry: CallRegistry,
        tokens: StreamTokens,
        ownership: Ownership,
        locks: CallLocks,
        playback: PlaybackRouter,
        payload_types: PayloadTable,
        publisher: EventPublisher,
        errors: ErrorReporter,
        metrics: IngestMetrics,
    ) -> None:
        self._registry = registry
        self._tokens = tokens
        self._ownership = ownership
        self._locks = locks
        self._playback = playback
        self._payload_types = payload_types
        self._publisher = publisher
        self._errors = errors
        self._metrics = metrics

    async def check_token(self, call_control_id: str, token: str) -> bool:
        return await self._tokens.check(call_control_id, token)

    def refused(self, call_control_id: str | None) -> None:
        self._metrics.streams_refused.inc()
        self._errors(
            call_control_id,
            "stream_auth_failed",
            "media stream refused: missing or wrong x-telnyx-streaming-auth-token",
        )

    def unsupported(self, call_control_id: str, detail: str) -> None:
        self._errors(call_control_id, "unsupported_codec", detail)

    async def open(
        self, websocket: WebSocket, call_control_id: str, stream_id: str | None, spec: CodecSpec
    ) -> StreamSession:
        """A newly authenticated stream, feeding its call from now on."""
        async with self._locks.hold(call_control_id):
            await self._ownership.claim(call_control_id)
            new = call_control_id not in self._registry
            call = self._registry.open(call_control_id)
            if new:
                self._metrics.calls_started.labels("stream").inc()
            session = StreamSession(
                websocket,
                call_control_id=call_control_id,
                stream_id=stream_id,
                payload_type=self._payload_types.private(spec),
                clock_rate=spec.clock_rate,
                sink=call.recording,
                on_activity=call.touch,
                on_end=call.stream_ended,
                publisher=self._publisher,
                errors=self._errors,
                on_dropped=self._metrics.events_dropped.labels("playback").inc,
            )
            call.attach_stream(session, time.monotonic())
        session.start()
        self._playback.register(session)
        return session

    def closed(self, session: StreamSession) -> None:
        self._playback.unregister(session)
        session.ended()
