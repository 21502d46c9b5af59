"""``/streams/telnyx``: Telnyx's media-streaming WebSocket protocol (TELNYX.md), both directions.

Telnyx connects, sends ``connected`` then ``start`` (which names the call) then ``media`` frames of
both tracks, ``dtmf``, ``mark`` (echoes of ours), ``error`` and ``stop``. No frame is trusted before
the token is checked: the ``x-telnyx-streaming-auth-token`` handshake header (or, without it, the
same key in the ``connected`` frame) must match, in constant time, the token issued for the call
that ``start`` names; otherwise the socket is closed with 1008 (policy violation) and nothing of
it reaches the call.

Media frames become RTP-like packets for the call's :class:`CallRecording`: ``chunk`` is the
sequence number and ``timestamp`` (milliseconds since the stream began, *unconfirmed*) the RTP
timestamp, so the same jitter buffer puts out-of-order frames back in order, per track. Audio a
consumer publishes on ``voicetap.media.playback`` for the call is sent back in order by
:meth:`StreamSession.send` (``clear``, ``media``, ``mark``). Keep-alive pings come from the server
(``INGEST_WS_PING_SECONDS``).
"""

import asyncio
import base64
import binascii
import logging
import time
import zlib
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from media_ingest.calls import Call
from media_ingest.codecs import CodecSpec, UnsupportedCodec, codec_spec
from media_ingest.rtp import RtpPacket
from voicetap_common import codec
from voicetap_common.media_events import (
    MEDIA_DTMF,
    MEDIA_MARK,
    MediaDtmf,
    MediaMark,
    PlaybackRequest,
)

if TYPE_CHECKING:
    from media_ingest.service import IngestService

log = logging.getLogger("voicetap.media_ingest.websocket")

AUTH_HEADER = "x-telnyx-streaming-auth-token"
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
_OUTGOING_BOUND = (
    1000  # playback messages waiting for the socket; beyond it the oldest audio is dropped
)


class StreamSession:
    """One authenticated media stream feeding one call."""

    def __init__(
        self,
        service: "IngestService",
        websocket: WebSocket,
        call: Call,
        stream_id: str | None,
        spec: CodecSpec,
    ) -> None:
        self._service = service
        self.websocket = websocket
        self.call = call
        self.stream_id = stream_id
        self._pt = service.payload_types.private(spec)
        self._clock = spec.clock_rate
        self._ssrc = {
            track: zlib.crc32(f"{stream_id}:{track}".encode()) for track in ("inbound", "outbound")
        }
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_OUTGOING_BOUND)
        self._sender: asyncio.Task[None] | None = None
        self.malformed = 0
        self.closed = False
        self.superseded = False

    def start(self) -> None:
        self._sender = asyncio.ensure_future(self._send_loop())

    # -- Telnyx -> voicetap ----------------------------------------------------------------------------
    def on_media(self, media: dict[str, Any]) -> None:
        try:
            track = (
                "outbound"
                if str(media.get("track", "inbound")).startswith("outbound")
                else "inbound"
            )
            chunk = int(media["chunk"])
            payload = base64.b64decode(media["payload"], validate=True)
            stamp = media.get("timestamp")
            millis = int(stamp) if stamp is not None else (chunk - 1) * 20
        except (KeyError, TypeError, ValueError, binascii.Error):
            self.malformed += 1
            return
        packet = RtpPacket(
            self._pt,
            False,
            chunk & 0xFFFF,
            (millis * self._clock // 1000) & 0xFFFFFFFF,
            self._ssrc[track],
            payload,
        )
        now = time.monotonic()
        self.call.last_media = now
        self.call.recording.leg(track).push(packet, now)

    def on_frame(self, frame: dict[str, Any]) -> bool:
        """Handle one trusted frame; False when the stream is over (``stop``)."""
        event = frame.get("event")
        ccid = self.call.call_control_id
        publisher = self._service.publisher
        if event == "media":
            media = frame.get("media")
            if isinstance(media, dict):
                self.on_media(media)
            else:
                self.malformed += 1
        elif event == "dtmf":
            digit = str((frame.get("dtmf") or {}).get("digit", ""))
            seq = frame.get("sequence_number")
            dtmf = MediaDtmf(
                id=f"dtmf:{ccid}:{self.stream_id}:{seq}",
                call_control_id=ccid,
                stream_id=self.stream_id,
                digit=digit,
                occurred_at=frame.get("occurred_at"),
            )
            publisher.offer(MEDIA_DTMF, dtmf.id, MEDIA_DTMF, dtmf, call_control_id=ccid)
        elif event == "mark":
            name = str((frame.get("mark") or {}).get("name", ""))
            seq = frame.get("sequence_number")
            mark = MediaMark(
                id=f"mark:{ccid}:{self.stream_id}:{seq}:{name}",
                call_control_id=ccid,
                stream_id=self.stream_id,
                name=name,
            )
            publisher.offer(MEDIA_MARK, mark.id, MEDIA_MARK, mark, call_control_id=ccid)
        elif event == "error":
            # now {"payload": {code, title, detail}}, formerly {"error": {...}}: both
            error = (
                frame.get("payload")
                if isinstance(frame.get("payload"), dict)
                else frame.get("error") or {}
            )
            detail = f"Telnyx stream error {error.get('code')} {error.get('title')}: {error.get('detail')}"
            self._service.control.error(ccid, "stream_error", detail)
        elif event == "stop":
            return False
        return True

    # -- voicetap -> Telnyx ----------------------------------------------------------------------------
    def send(self, request: PlaybackRequest) -> None:
        """Queue a playback request; ``clear`` drops the audio still queued here too."""
        if request.clear:
            kept = []
            while not self._outgoing.empty():
                item = self._outgoing.get_nowait()
                if item.get("event") != "media":
                    kept.append(item)
            for item in [{"event": "clear"}, *kept]:
                self._outgoing.put_nowait(item)
        if request.payload is not None:
            self._offer({"event": "media", "media": {"payload": request.payload}})
        if request.mark is not None:
            self._offer({"event": "mark", "mark": {"name": request.mark}})

    def _offer(self, message: dict[str, Any]) -> None:
        if self._outgoing.full():
            self._service.metrics.events_dropped.labels("playback").inc()
            return
        self._outgoing.put_nowait(message)

    async def _send_loop(self) -> None:
        while True:
            message = await self._outgoing.get()
            if self.websocket.application_state != WebSocketState.CONNECTED:
                return
            try:
                await self.websocket.send_text(codec.dumps(message).decode())
            except (WebSocketDisconnect, RuntimeError, OSError):
                return

    # -- end -------------------------------------------------------------------------------------------
    def replaced(self) -> None:
        """A fork replaced this stream on the call: it no longer marks the call stopped when it ends."""
        self.superseded = True

    def close(self) -> None:
        """Close from our side (the call finished)."""
        if not self.closed:
            asyncio.ensure_future(_close(self.websocket, 1000))

    def ended(self) -> None:
        self.closed = True
        if self._sender is not None:
            self._sender.cancel()
        call = self.call
        if call.stream is self:
            call.stream = None
            if not call.finished and not call.fork_active and not self.superseded:
                call.mark_stopped()


async def _close(websocket: WebSocket, code: int) -> None:
    try:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close(code)
    except (RuntimeError, OSError):
        pass


def _spec(media_format: Any) -> CodecSpec:
    if not isinstance(media_format, dict):
        media_format = {}
    encoding = str(media_format.get("encoding") or "PCMU")
    spec = codec_spec(encoding)
    if spec.name == "L16":
        rate = int(media_format.get("sample_rate") or spec.clock_rate)
        spec = CodecSpec("L16", rate, int(media_format.get("channels") or 1))
    return spec


async def stream_endpoint(websocket: WebSocket) -> None:
    service: IngestService = websocket.app.state.service
    await websocket.accept()
    token = websocket.headers.get(AUTH_HEADER)
    session: StreamSession | None = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            try:
                frame = codec.loads(text)
            except codec.JSONDecodeError:
                frame = None
            if not isinstance(frame, dict):
                if session is not None:
                    session.malformed += 1
                continue
            if session is not None:
                if not session.on_frame(frame):
                    return
                continue
            event = frame.get("event")
            if event == "connected":
                token = token or frame.get(AUTH_HEADER)
            elif event == "start":
                session = await _authenticate(service, websocket, frame, token)
                if session is None:
                    return
            # anything else before ``start`` is not trusted: dropped
    except WebSocketDisconnect:
        return
    finally:
        if session is not None:
            service.playback.unregister(session)
            session.ended()
        await _close(websocket, 1000)


async def _authenticate(
    service: "IngestService", websocket: WebSocket, frame: dict[str, Any], token: Any
) -> StreamSession | None:
    start = frame.get("start") if isinstance(frame.get("start"), dict) else {}
    ccid = start.get("call_control_id")
    if (
        not isinstance(ccid, str)
        or not ccid
        or not isinstance(token, str)
        or not await service.control.check_stream_token(ccid, token)
    ):
        service.metrics.streams_refused.inc()
        service.control.error(
            ccid if isinstance(ccid, str) else None,
            "stream_auth_failed",
            "media stream refused: missing or wrong x-telnyx-streaming-auth-token",
        )
        await _close(websocket, POLICY_VIOLATION)
        return None
    try:
        spec = _spec(start.get("media_format"))
    except (UnsupportedCodec, ValueError) as exc:
        service.control.error(ccid, "unsupported_codec", f"media stream: {exc}")
        await _close(websocket, UNSUPPORTED_DATA)
        return None
    call = await service.control.attach_stream(ccid)
    stream_id = frame.get("stream_id")
    session = StreamSession(
        service, websocket, call, stream_id if isinstance(stream_id, str) else None, spec
    )
    if call.stream is not None:
        call.stream.replaced()
    call.stream = session
    session.start()
    service.playback.register(session)
    log.info(
        "media stream started",
        extra={"call_control_id": ccid, "stream_id": stream_id, "codec": spec.name},
    )
    return session
