"""Forked call media as Telnyx sends it: paced RTP over UDP, one stream per leg.

With ``rx``/``tx`` targets the inbound leg goes to ``rx`` and the outbound leg to ``tx`` as plain
RTP. With the legacy single ``target`` both legs go there, each packet behind a 24-byte "STREP"
header that says which leg and direction it carries.
"""

import asyncio
import logging
import secrets
import socket
import struct
import uuid
from dataclasses import dataclass, field

from telnyx_simulator.audio import FRAME_SAMPLES, PAYLOAD_TYPES, CallAudio, Codec, Track, encode

log = logging.getLogger("voicetap.simulator.rtp")

FRAME_SECONDS = FRAME_SAMPLES / 8000
STREP_HEADER_LEN = 24


@dataclass
class RtpStream:
    """RTP header state of one stream (RFC 3550): random SSRC, sequence and timestamp origins."""

    payload_type: int
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sequence: int = field(default_factory=lambda: secrets.randbits(16))
    timestamp: int = field(default_factory=lambda: secrets.randbits(32))
    marker: bool = True  # set on the first packet (start of a talkspurt)

    def packet(self, payload: bytes, samples: int) -> bytes:
        """One packet; advances sequence (mod 2^16) and timestamp (mod 2^32)."""
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if self.marker else 0) | self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
        )
        self.marker = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return header + payload


def strep_header(call_leg_id: str, *, b_leg: bool, transmitted: bool) -> bytes:
    """The legacy fork header: magic ``11``, version 1, L (B-leg), D (sent by Telnyx), length 24."""
    first = 0b11000000 | (1 << 2) | (int(b_leg) << 1) | int(transmitted)
    return bytes([first, STREP_HEADER_LEN]) + bytes(6) + uuid.UUID(call_leg_id).bytes


@dataclass(frozen=True)
class ForkLeg:
    track: Track
    host: str
    port: int
    prefix: bytes = b""  # the STREP header, for the legacy single target


@dataclass
class RtpFork:
    """Sends ``audio`` from frame ``start_frame`` on, one packet per leg every 20 ms, until cancelled."""

    audio: CallAudio
    legs: list[ForkLeg]
    codec: Codec = "PCMU"
    start_frame: int = 0
    sent: dict[Track, int] = field(default_factory=lambda: {"inbound": 0, "outbound": 0})
    streams: dict[Track, RtpStream] = field(init=False)

    def __post_init__(self) -> None:
        self.streams = {leg.track: RtpStream(PAYLOAD_TYPES[self.codec]) for leg in self.legs}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        targets = []
        for leg in self.legs:
            family, _, _, _, address = (
                await loop.getaddrinfo(leg.host, leg.port, type=socket.SOCK_DGRAM)
            )[0]
            targets.append((leg, address, family))
        sockets = {
            family: socket.socket(family, socket.SOCK_DGRAM)
            for family in {family for _, _, family in targets}
        }
        try:
            for sock in sockets.values():
                sock.setblocking(False)
            started, n = loop.time(), 0
            while True:
                for leg, address, family in targets:
                    payload = encode(self.codec, self.audio.frame(leg.track, self.start_frame + n))
                    packet = leg.prefix + self.streams[leg.track].packet(payload, FRAME_SAMPLES)
                    try:
                        sockets[family].sendto(packet, address)
                        self.sent[leg.track] += 1
                    except (
                        OSError
                    ) as exc:  # a full buffer or an ICMP error: the packet is lost, as on a network
                        log.debug("rtp packet lost", extra={"target": address, "error": str(exc)})
                n += 1
                delay = started + n * FRAME_SECONDS - loop.time()
                if delay < -0.2:  # far behind (a stalled loop): resume the pace instead of bursting
                    started, delay = loop.time() - n * FRAME_SECONDS, 0.0
                await asyncio.sleep(max(delay, 0.0))
        finally:
            for sock in sockets.values():
                sock.close()
