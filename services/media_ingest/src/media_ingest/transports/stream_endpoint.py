"""``/streams/telnyx``: the WebSocket Telnyx streams a call's media to (TELNYX.md).

Telnyx connects, sends ``connected`` then ``start`` (which names the call) then ``media`` frames of
both tracks, ``dtmf``, ``mark`` (echoes of ours), ``error`` and ``stop``. No frame is trusted before
the token is checked: the ``x-telnyx-streaming-auth-token`` handshake header (or, without it, the
same key in the ``connected`` frame) must match, in constant time, the token issued for the call
that ``start`` names; otherwise the socket is closed with 1008 (policy violation) and nothing of
it reaches the call. Keep-alive pings come from the server (``INGEST_WS_PING_SECONDS``).

On a host of several workers (``voicetap ingest --workers N``) the stream lands on whichever the
kernel picks; a ``start`` naming a call that another worker holds is relayed there
(``transports.relay``), and the holder checks the token.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from media_ingest.protocol.codecs import CodecSpec, UnsupportedCodec, codec_spec
from media_ingest.transports.relay import relay
from media_ingest.transports.stream_session import StreamSession, close_socket
from voicetap_sdk import codec

log = logging.getLogger("voicetap.media_ingest.websocket")

AUTH_HEADER = "x-telnyx-streaming-auth-token"
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003


class StreamGate(Protocol):
    """What the endpoint needs of the call side (``media_ingest.streams.StreamCalls``)."""

    async def check_token(self, call_control_id: str, token: str) -> bool: ...
    def refused(self, call_control_id: str | None) -> None: ...
    def unsupported(self, call_control_id: str, detail: str) -> None: ...
    async def open(
        self, websocket: WebSocket, call_control_id: str, stream_id: str | None, spec: CodecSpec
    ) -> StreamSession: ...
    def closed(self, session: StreamSession) -> None: ...


HolderPort = Callable[[str], Awaitable[int | None]]


def stream_endpoint(
    gate: StreamGate, holder_port: HolderPort | None = None
) -> Callable[[WebSocket], Awaitable[None]]:
    """``holder_port(call_control_id)``: the private port of the sibling worker holding the call,
    None to take the stream here (``siblings.Siblings.holder_port``; not given: no siblings)."""

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        header = websocket.headers.get(AUTH_HEADER)
        token = header
        opening: list[str] = []  # the ``connected`` frame, passed on by a relay
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
                    opening = [text]
                elif event == "start":
                    port = await _holder(holder_port, frame)
                    if port is not None:
                        headers = {AUTH_HEADER: header} if header else {}
                        await relay(websocket, port, headers, [*opening, text], _ccid(frame) or "")
                        return
                    session = await _authenticate(gate, websocket, frame, token)
                    if session is None:
                        return
                # anything else before ``start`` is not trusted: dropped
        except WebSocketDisconnect:
            return
        finally:
            if session is not None:
                gate.closed(session)
            await close_socket(websocket, 1000)

    return endpoint


def _ccid(frame: dict[str, Any]) -> str | None:
    start = frame.get("start")
    ccid = start.get("call_control_id") if isinstance(start, dict) else None
    return ccid if isinstance(ccid, str) and ccid else None


async def _holder(holder_port: HolderPort | None, frame: dict[str, Any]) -> int | None:
    ccid = _ccid(frame)
    return None if holder_port is None or ccid is None else await holder_port(ccid)


async def _authenticate(
    gate: StreamGate, websocket: WebSocket, frame: dict[str, Any], token: Any
) -> StreamSession | None:
    start = frame.get("start")
    start = start if isinstance(start, dict) else {}
    ccid = start.get("call_control_id")
    if (
        not isinstance(ccid, str)
        or not ccid
        or not isinstance(token, str)
        or not await gate.check_token(ccid, token)
    ):
        gate.refused(ccid if isinstance(ccid, str) else None)
        await close_socket(websocket, POLICY_VIOLATION)
        return None
    try:
        spec = _spec(start.get("media_format"))
    except (UnsupportedCodec, ValueError) as exc:
        gate.unsupported(ccid, f"media stream: {exc}")
        await close_socket(websocket, UNSUPPORTED_DATA)
        return None
    stream_id = frame.get("stream_id")
    session = await gate.open(
        websocket, ccid, stream_id if isinstance(stream_id, str) else None, spec
    )
    log.info(
        "media stream started",
        extra={"call_control_id": ccid, "stream_id": stream_id, "codec": spec.name},
    )
    return session


def _spec(media_format: Any) -> CodecSpec:
    if not isinstance(media_format, dict):
        media_format = {}
    encoding = str(media_format.get("encoding") or "PCMU")
    spec = codec_spec(encoding)
    if spec.name == "L16":
        rate = int(media_format.get("sample_rate") or spec.clock_rate)
        spec = CodecSpec("L16", rate, int(media_format.get("channels") or 1))
    return spec
