"""Telnyx's side of WebSocket media streaming (``streaming_start``).

Connects to ``stream_url`` with the ``x-telnyx-streaming-auth-token`` header, sends ``connected``,
``start``, a ``media`` frame per track every 20 ms (``sequence_number``, ``chunk`` and
``timestamp`` as strings, base64 payload without RTP header) and ``stop``. Frames the application
sends (``media``, ``clear``, ``mark``) are recorded and played out against a clock: a ``mark``
comes back once the audio queued before it has played, at once if none is queued, and ``clear``
drops the queue and returns its pending marks. ``media.timestamp`` is in milliseconds since the
stream began (Telnyx does not document its unit). Sends ``streaming.started`` once connected,
``streaming.stopped`` when the stream ends and ``streaming.failed`` when it cannot connect.
"""

import asyncio
import base64
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from telnyx_simulator import payloads
from telnyx_simulator.audio import FRAME_SAMPLES, CallAudio, Codec, Track, encode
from telnyx_simulator.rtp import FRAME_SECONDS
from telnyx_simulator.state import SimCall
from telnyx_simulator.webhooks import WebhookSender
from voicetap_sdk import codec

log = logging.getLogger("voicetap.simulator.media_stream")

AUTH_HEADER = "x-telnyx-streaming-auth-token"
_TRACKS: dict[str, tuple[Track, ...]] = {
    "inbound_track": ("inbound",),
    "outbound_track": ("outbound",),
    "both_tracks": ("inbound", "outbound"),
}
# Bytes per second of the audio an application sends back in ``rtp`` mode, by codec.
_PLAYBACK_BYTE_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 8000}


@dataclass(eq=False)
class _PendingMark:
    name: str
    handle: asyncio.TimerHandle | None = None


@dataclass
class MediaStream:
    """One stream; ``params`` is the ``streaming_start`` body with the ``stream_id`` Telnyx assigned."""

    call: SimCall
    params: dict[str, Any]
    audio: CallAudio
    webhooks: WebhookSender
    call_codec: Codec = "PCMU"
    start_frame: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: dict[Track, int] = field(default_factory=lambda: {"inbound": 0, "outbound": 0})
    echoed_marks: list[str] = field(default_factory=list)
    connected: bool = False
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _sequence: int = field(default=0, repr=False)
    _playback_until: float = field(default=0.0, repr=False)
    _pending_marks: list[_PendingMark] = field(default_factory=list, repr=False)
    _background: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def stream_id(self) -> str:
        return str(self.params["stream_id"])

    @property
    def codec(self) -> Codec:
        """The streamed codec: ``stream_codec`` when it is G.711, else the call's own codec."""
        wanted = self.params.get("stream_codec")
        return wanted if wanted in ("PCMU", "PCMA") else self.call_codec

    def stop(self) -> None:
        """Ask the stream to send ``stop`` and close; ``run`` returns once it has."""
        self._stopping.set()

    async def run(self) -> None:
        url = str(self.params["stream_url"])
        token = self.params.get("stream_auth_token")
        try:
            ws = await connect(
                url, additional_headers={AUTH_HEADER: token} if token else None, open_timeout=5
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.info("stream connection failed", extra={"stream_url": url, "error": repr(exc)})
            self.webhooks.send(
                "streaming.failed",
                payloads.streaming_failed(
                    self.call,
                    failure_reason=f"connection_failed: {exc}",
                    stream_id=self.stream_id,
                    stream_url=url,
                ),
            )
            return
        self.connected = True
        self.webhooks.send("streaming.started", payloads.streaming(self.call, url))
        receiver = asyncio.create_task(self._receive(ws))
        try:
            await self._send_frames(ws, token)
        except ConnectionClosed:
            pass
        finally:
            receiver.cancel()
            for pending in self._pending_marks:
                if pending.handle is not None:
                    pending.handle.cancel()
            for task in list(self._background):
                task.cancel()
            await ws.close()
            self.webhooks.send("streaming.stopped", payloads.streaming(self.call, url))

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send_frames(self, ws: ClientConnection, token: str | None) -> None:
        connected: dict[str, Any] = {"event": "connected", "version": "1.0.0"}
        if token:
            connected[AUTH_HEADER] = token
        await ws.send(codec.dumps(connected).decode())
        await ws.send(codec.dumps(self._start_frame()).decode())
        tracks = _TRACKS[self.params.get("stream_track") or "inbound_track"]
        loop = asyncio.get_running_loop()
        started, n = loop.time(), 0
        while not self._stopping.is_set():
            for track in tracks:
                payload = encode(self.codec, self.audio.frame(track, self.start_frame + n))
                frame = {
                    "event": "media",
                    "sequence_number": self._next_sequence(),
                    "stream_id": self.stream_id,
                    "media": {
                        "track": track,
                        "chunk": str(n + 1),
                        "timestamp": str(
                            n * FRAME_SAMPLES // 8
                        ),  # milliseconds since the stream began
                        "payload": base64.b64encode(payload).decode(),
                    },
                }
                await ws.send(codec.dumps(frame).decode())
                self.sent[track] += 1
            n += 1
            await asyncio.sleep(max(started + n * FRAME_SECONDS - loop.time(), 0.0))
        stop = {
            "event": "stop",
            "sequence_number": self._next_sequence(),
            "stream_id": self.stream_id,
            "stop": {"user_id": self.user_id, "call_control_id": self.call.call_control_id},
        }
        await ws.send(codec.dumps(stop).decode())

    def _start_frame(self) -> dict[str, Any]:
        custom = {p["name"]: p["value"] for p in self.params.get("custom_parameters") or []}
        return {
            "event": "start",
            "sequence_number": self._next_sequence(),
            "stream_id": self.stream_id,
            "start": {
                "user_id": self.user_id,
                "call_control_id": self.call.call_control_id,
                "call_session_id": self.call.call_session_id,
                "from": self.call.from_,
                "to": self.call.to,
                "tags": [],
                "client_state": self.call.client_state,
                "custom_parameters": custom,
                "media_format": {"encoding": self.codec, "sample_rate": 8000, "channels": 1},
            },
        }

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                await self._handle_frame(ws, message)
        except ConnectionClosed:
            pass

    async def _handle_frame(self, ws: ClientConnection, message: str | bytes) -> None:
        try:
            frame = codec.loads(message)
        except codec.JSONDecodeError:
            log.info("non-JSON frame from the application", extra={"stream_id": self.stream_id})
            return
        if not isinstance(frame, dict):
            return
        self.received.append(frame)
        loop = asyncio.get_running_loop()
        now = loop.time()
        event = frame.get("event")
        if event == "media":
            self._playback_until = max(now, self._playback_until) + self._playback_seconds(frame)
        elif event == "clear":
            self._playback_until = now
            pending, self._pending_marks = self._pending_marks, []
            for mark in pending:
                if mark.handle is not None:
                    mark.handle.cancel()
                await self._echo_mark(ws, mark.name)
        elif event == "mark":
            name = str((frame.get("mark") or {}).get("name", ""))
            if self._playback_until <= now:
                await self._echo_mark(ws, name)
            else:
                mark = _PendingMark(name)
                mark.handle = loop.call_later(self._playback_until - now, self._fire_mark, ws, mark)
                self._pending_marks.append(mark)

    def _fire_mark(self, ws: ClientConnection, mark: _PendingMark) -> None:
        self._pending_marks.remove(mark)
        task = asyncio.get_running_loop().create_task(self._echo_mark(ws, mark.name))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _echo_mark(self, ws: ClientConnection, name: str) -> None:
        frame = {
            "event": "mark",
            "stream_id": self.stream_id,
            "sequence_number": self._next_sequence(),
            "mark": {"name": name},
        }
        try:
            await ws.send(codec.dumps(frame).decode())
            self.echoed_marks.append(name)
        except ConnectionClosed:
            pass

    def _playback_seconds(self, frame: dict[str, Any]) -> float:
        """How long a played-back ``media`` frame lasts in ``rtp`` mode; 0 when unknown (mp3, Opus, AMR-WB)."""
        if self.params.get("stream_bidirectional_mode") != "rtp":
            return 0.0
        try:
            size = len(
                base64.b64decode((frame.get("media") or {}).get("payload", ""), validate=True)
            )
        except ValueError:
            return 0.0
        playback_codec = self.params.get("stream_bidirectional_codec") or "PCMU"
        if playback_codec == "L16":
            return size / (2 * int(self.params.get("stream_bidirectional_sampling_rate") or 16000))
        rate = _PLAYBACK_BYTE_RATES.get(playback_codec)
        return size / rate if rate else 0.0
