"""A media-stream WebSocket that landed on a worker which does not hold its call, relayed frame by
frame to the worker of the host that does (its private loopback port, ``siblings``).

The holder sees Telnyx's stream as if it had come straight to it: the same handshake token header,
the frames read so far (``connected``, ``start``), then every frame both ways, unchanged. Both
sides close together, with the code of the side that closed first: a token the holder refuses
reaches Telnyx as its 1008.

Cost, measured on this 2-core machine (uvloop; 20,000 PCMU ``media`` frames of 160 bytes per
track, sent as fast as accepted, CPU of each worker from /proc): about 19 µs of the landing
worker's CPU per frame relayed, the holder's own ~20 µs per frame unchanged. A call streams 100
frames/s (two tracks), so each relayed call costs the landing worker about 0.2% of a core. With N
workers a stream lands on its holder 1 time in N; the other (N-1)/N pay this.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from media_ingest.keys import STREAM_PATH
from media_ingest.transports.stream_session import close_socket

log = logging.getLogger("voicetap.media_ingest.relay")

OPEN_SECONDS = 10.0  # a holder that is being restarted answers once it is up again
TRY_AGAIN_LATER = 1013


async def relay(
    websocket: WebSocket,
    port: int,
    headers: dict[str, str],
    opening: Sequence[str],
    call_control_id: str,
) -> None:
    """Relay ``websocket`` (accepted, ``opening`` frames already read) to the worker on ``port``,
    with the handshake ``headers`` to pass on."""
    try:
        upstream = await connect(
            f"ws://127.0.0.1:{port}{STREAM_PATH}",
            additional_headers=headers,
            open_timeout=OPEN_SECONDS,
            compression=None,  # loopback: deflating would only cost CPU
            ping_interval=None,  # the holder pings this side, the landing worker Telnyx's
            max_size=None,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        log.warning(
            "media stream could not be relayed to the worker holding its call",
            extra={"call_control_id": call_control_id, "port": port, "error": repr(exc)},
        )
        await close_socket(websocket, TRY_AGAIN_LATER)
        return
    log.info(
        "media stream relayed to the worker holding its call",
        extra={"call_control_id": call_control_id, "port": port},
    )
    async with upstream:
        for frame in opening:
            await upstream.send(frame)
        inward = asyncio.create_task(_inward(websocket, upstream))
        outward = asyncio.create_task(_outward(upstream, websocket))
        await asyncio.wait({inward, outward}, return_when=asyncio.FIRST_COMPLETED)
        for task in (inward, outward):
            task.cancel()
        await asyncio.gather(inward, outward, return_exceptions=True)
        await close_socket(websocket, upstream.close_code or 1000)


async def _inward(websocket: WebSocket, upstream: ClientConnection) -> None:
    """Telnyx -> holder, until Telnyx disconnects (then closing ``upstream`` closes the holder's)."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            await upstream.send(text if text is not None else message.get("bytes") or b"")


async def _outward(upstream: ClientConnection, websocket: WebSocket) -> None:
    """Holder -> Telnyx (playback, marks, clear), until the holder closes."""
    with contextlib.suppress(ConnectionClosed):
        async for message in upstream:
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)
