"""A stand-in for media_ingest, as small as the contract: it lets the simulate tests check recordings
while the real service is being written.

It reads ``telnyx.call.answered`` / ``telnyx.call.hangup`` from Redis, asks the fake Telnyx API
(through the real SDK) to fork each answered call to two UDP ports, counts the RTP packets, and on
the hang-up serves ``/calls/{id}/recording.wav`` (silence as long as the audio received, less
``short_by`` seconds) and publishes ``voicetap.recording.completed``.
"""

import asyncio
import contextlib
import io
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import telnyx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telnyx_simulator.serve import serve


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets += 1


@dataclass
class StandInIngest:
    redis: Redis
    sdk: telnyx.AsyncTelnyx
    short_by: float = 0.0
    recordings: dict[str, bytes] = field(default_factory=dict)
    _legs: dict[str, list[tuple[asyncio.DatagramTransport, _Counter]]] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def ready(_: Request) -> Response:
            return JSONResponse({"status": "ready"})

        async def recording(request: Request) -> Response:
            found = self.recordings.get(request.path_params["call_control_id"])
            return Response(found, media_type="audio/wav") if found else Response(status_code=404)

        return Starlette(
            routes=[
                Route("/readyz", ready),
                Route("/calls/{call_control_id}/recording.wav", recording),
            ]
        )

    async def _answered(self, call_control_id: str, event_id: str) -> None:
        loop = asyncio.get_running_loop()
        legs = []
        for _ in range(2):
            transport, counter = await loop.create_datagram_endpoint(
                _Counter, local_addr=("127.0.0.1", 0)
            )
            legs.append((transport, counter))
        self._legs[call_control_id] = legs
        rx, tx = (f"udp:127.0.0.1:{t.get_extra_info('sockname')[1]}" for t, _ in legs)
        await self.sdk.calls.actions.start_forking(
            call_control_id,
            rx=rx,
            tx=tx,
            stream_type="decrypted",
            command_id=f"fork_start:{event_id}",
        )

    async def _hangup(self, call_control_id: str) -> None:
        await asyncio.sleep(0.2)  # the last packets in flight
        legs = self._legs.pop(call_control_id, [])
        for transport, _ in legs:
            transport.close()
        seconds = max((c.packets for _, c in legs), default=0) * 0.02 - self.short_by
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(bytes(4 * int(max(seconds, 0) * 8000)))
        self.recordings[call_control_id] = buffer.getvalue()
        event = {
            "id": f"recording:{call_control_id}",
            "call_control_id": call_control_id,
            "path": f"/recordings/{call_control_id}.wav",
            "duration": seconds,
        }
        await self.redis.xadd(
            "voicetap.recording.completed",
            {
                "id": call_control_id,
                "type": "voicetap.recording.completed",
                "event": orjson.dumps(event),
                "call_control_id": call_control_id,
            },
        )

    async def _consume(self) -> None:
        since = f"{int(time.time() * 1000)}-0"
        positions = {"telnyx.call.answered": since, "telnyx.call.hangup": since}
        while True:
            for topic, entries in await self.redis.xread(positions, block=200):  # type: ignore[arg-type]
                for entry_id, fields in entries:
                    positions[topic.decode()] = entry_id
                    cid, event_id = fields[b"call_control_id"].decode(), fields[b"id"].decode()
                    if topic == b"telnyx.call.answered":
                        await self._answered(cid, event_id)
                    else:
                        await self._hangup(cid)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        async with serve(self.app()) as url:
            consumer = asyncio.create_task(self._consume())
            try:
                yield url
            finally:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
