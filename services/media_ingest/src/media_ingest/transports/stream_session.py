"""One authenticated Telnyx media stream feeding one call, both directions (TELNYX.md).

Media frames become RTP-like packets for the call's sink: ``chunk`` is the sequence number and
``timestamp`` (milliseconds since the stream began, *unconfirmed*) the RTP timestamp, so the same
jitter buffer puts out-of-order frames back in order, per track. Audio a consumer publishes on
``voicetap.media.playback`` for the call is sent back in order by :meth:`StreamSession.send`
(``clear``, ``media``, ``mark``).
"""

import asyncio
import base64
import binascii
import time
import zlib
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from media_ingest.events import ErrorReporter, EventPublisher
from media_ingest.protocol.rtp import RtpPacket, Track
from media_ingest.transports.sinks import Activity, MediaSink
from voicetap_sdk import codec
from voicetap_sdk.media_events import MediaDtmf, MediaMark, PlaybackRequest
from voicetap_sdk.topics import MEDIA_DTMF, MEDIA_MARK

_OUTGOING_BOUND = 1000  # playback messages waiting for the socket; beyond, new audio is dropped


class StreamSession:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        call_control_id: str,
        stream_id: str | None,
        payload_type: int,
        clock_rate: int,
        sink: MediaSink,
        on_activity: Activity,
        on_end: Callable[["StreamSession"], None],
        publisher: EventPublisher,
        errors: ErrorReporter,
        on_dropped: Callable[[], None],
    ) -> None:
        """``payload_type``: the private number the sink decodes this stream's format by;
        ``on_end``: told once the socket is gone; ``on_dropped``: a playback message dropped."""
        self.websocket = websocket
        self.call_control_id = call_control_id
        self.stream_id = stream_id
        self._pt = payload_type
        self._clock = clock_rate
        self._sink = sink
        self._on_activity = on_activity
        self._on_end = on_end
        self._publisher = publisher
        self._errors = errors
        self._on_dropped = on_dropped
        self._ssrc: dict[Track, int] = {
            track: zlib.crc32(f"{stream_id}:{track}".encode()) for track in ("inbound", "outbound")
        }
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_OUTGOING_BOUND)
        self._sender: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.malformed = 0
        self.closed = False
        self.superseded = False

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop())

    # -- Telnyx -> voicetap ----------------------------------------------------------------------
    def on_media(self, media: dict[str, Any]) -> None:
        try:
            track: Track = (
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
        self._on_activity(now)
        self._sink.leg(track).push(packet, now)

    def on_frame(self, frame: dict[str, Any]) -> bool:
        """Handle one trusted frame; False when the stream is over (``stop``)."""
        event = frame.get("event")
        ccid = self.call_control_id
        if event == "media":
            media = frame.get("media")
            if isinstance(media, dict):
                self.on_media(media)
            else:
                self.malformed += 1
        elif event == "dtmf":
            digit = str(_object(frame.get("dtmf")).get("digit", ""))
            seq = frame.get("sequence_number")
            dtmf = MediaDtmf(
                id=f"dtmf:{ccid}:{self.stream_id}:{seq}",
                call_control_id=ccid,
                stream_id=self.stream_id,
                digit=digit,
                occurred_at=frame.get("occurred_at"),
            )
            self._publisher.offer(MEDIA_DTMF, dtmf.id, MEDIA_DTMF, dtmf, call_control_id=ccid)
        elif event == "mark":
            name = str(_object(frame.get("mark")).get("name", ""))
            seq = frame.get("sequence_number")
            mark = MediaMark(
                id=f"mark:{ccid}:{self.stream_id}:{seq}:{name}",
                call_control_id=ccid,
                stream_id=self.stream_id,
                name=name,
            )
            self._publisher.offer(MEDIA_MARK, mark.id, MEDIA_MARK, mark, call_control_id=ccid)
        elif event == "error":
            # now {"payload": {code, title, detail}}, formerly {"error": {...}}: both
            payload = frame.get("payload")
            error = payload if isinstance(payload, dict) else _object(frame.get("error"))
            detail = (
                f"Telnyx stream error {error.get('code')} {error.get('title')}: "
                f"{error.get('detail')}"
            )
            self._errors(ccid, "stream_error", detail)
        elif event == "stop":
            return False
        return True

    # -- voicetap -> Telnyx ----------------------------------------------------------------------
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
            self._on_dropped()
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

    # -- end -------------------------------------------------------------------------------------
    def replaced(self) -> None:
        """Something else feeds the call now: this stream no longer pauses it when it ends."""
        self.superseded = True

    def close(self) -> None:
        """Close from our side (the call finished); the endpoint then ends the session."""
        if not self.closed and self._closing is None:
            self._closing = asyncio.create_task(close_socket(self.websocket, 1000))

    def ended(self) -> None:
        """The socket is gone (the endpoint's last word)."""
        self.closed = True
        if self._sender is not None:
            self._sender.cancel()
        self._on_end(self)


async def close_socket(websocket: WebSocket, code: int) -> None:
    """Close unless it is closed; a peer already gone is no error (uvicorn's sans-I/O WebSocket
    reports it as a disconnect, the legacy one as a RuntimeError)."""
    try:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close(code)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
