"""UDP receivers of forked RTP: one datagram protocol per socket of a call's port pair.

The rx socket carries the inbound leg (caller -> Telnyx), the tx socket the outbound leg; a packet
behind a legacy STREP header says its own leg. Each socket latches to the source address of the
first valid RTP packet it receives and drops (and counts) datagrams from any other, so nobody who
finds the port can inject audio. Malformed datagrams are counted and dropped. The per-datagram path
is parse, one dict-free comparison and a push into the call's jitter buffer: no Redis, no await,
no logging.
"""

import asyncio
import logging
import socket
import time

from media_ingest.protocol.rtp import RtpError, Track, parse_rtp
from media_ingest.transports.sinks import Activity, MediaSink

log = logging.getLogger("voicetap.media_ingest.udp")

_monotonic = time.monotonic


class RtpReceiver(asyncio.DatagramProtocol):
    __slots__ = (
        "sink",
        "on_activity",
        "call_control_id",
        "track",
        "leg",
        "source",
        "foreign",
        "malformed",
        "transport",
        "errors",
    )

    def __init__(
        self, sink: MediaSink, on_activity: Activity, track: Track, call_control_id: str
    ) -> None:
        self.sink = sink
        self.on_activity = on_activity
        self.call_control_id = call_control_id  # for the one log line of a failing packet
        self.track = track
        self.leg = sink.leg(track)
        self.source: tuple[str, int] | None = None
        self.foreign = 0
        self.malformed = 0
        self.errors = 0
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        source = self.source
        if addr != source and source is not None:
            self.foreign += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.malformed += 1
            return
        if source is None:  # latch on the first valid RTP packet: garbage or RTCP cannot take it
            self.source = addr
        now = _monotonic()
        self.on_activity(now)
        try:
            if packet.strep is None:
                self.leg.push(packet, now)
            else:
                self.sink.leg(packet.strep.track).push(packet, now)
        except Exception:  # noqa: BLE001 - a packet never takes the call down
            self.errors += 1
            if self.errors == 1:
                log.exception(
                    "packet handling failed",
                    extra={"call_control_id": self.call_control_id, "leg": self.track},
                )

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on a receive-only socket say nothing about the stream
        pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


async def open_receiver(
    sink: MediaSink, on_activity: Activity, track: Track, sock: socket.socket, call_control_id: str
) -> RtpReceiver:
    """Start receiving on an already bound, non-blocking socket."""
    loop = asyncio.get_running_loop()
    receiver = RtpReceiver(sink, on_activity, track, call_control_id)
    await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
    return receiver
