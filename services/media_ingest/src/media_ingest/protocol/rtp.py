"""RTP (RFC 3550) packet parsing and building, with the legacy Telnyx "STREP" wrapper.

Forked media arrives as plain RTP over UDP; the legacy fork ``target`` puts a 24-byte STREP
header in front of each RTP packet (byte 0: ``11`` magic, 4-bit version 1, L bit = B-leg,
D bit = transmitted by Telnyx; byte 1: header length; 6 reserved bytes; 16-byte call_leg_id).
:func:`parse_rtp` accepts both, so one socket can serve either kind of fork.

Parsing costs one ``struct.unpack_from``, one payload slice and one small object per packet.
"""

import struct
import uuid
from typing import Literal

Track = Literal["inbound", "outbound"]
RtpErrorReason = Literal[
    "truncated",
    "bad_version",
    "csrc_past_end",
    "extension_past_end",
    "bad_padding",
    "rtcp",
    "bad_strep",
]

RTP_HEADER_SIZE = 12
STREP_HEADER_SIZE = 24
_STREP_VERSION = 1
_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_NO_CSRCS: tuple[int, ...] = ()


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet; ``reason`` is a short label fit for metrics."""

    def __init__(self, reason: RtpErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RtpErrorReason = reason


class StrepHeader:
    """The legacy Telnyx fork wrapper: which call leg and which direction a packet belongs to."""

    __slots__ = ("leg", "track", "call_leg_id")

    def __init__(self, leg: Literal["A", "B"], track: Track, call_leg_id: bytes) -> None:
        self.leg = leg
        #: ``inbound``: received by Telnyx (D bit 0); ``outbound``: transmitted by it (D bit 1).
        self.track = track
        self.call_leg_id = call_leg_id

    @property
    def call_leg_uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.call_leg_id)

    def __repr__(self) -> str:
        return f"StrepHeader({self.leg!r}, {self.track!r}, call_leg_id={self.call_leg_uuid})"


class RtpPacket:
    """One parsed RTP packet. ``payload`` excludes header, CSRCs, extension and padding."""

    __slots__ = (
        "payload_type",
        "marker",
        "sequence",
        "timestamp",
        "ssrc",
        "csrcs",
        "extension",
        "payload",
        "strep",
    )

    def __init__(
        self,
        payload_type: int,
        marker: bool,
        sequence: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        csrcs: tuple[int, ...] = _NO_CSRCS,
        extension: tuple[int, bytes] | None = None,
        strep: StrepHeader | None = None,
    ) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.csrcs = csrcs
        #: ``(profile, data)`` of the RFC 3550 header extension, or None.
        self.extension = extension
        self.strep = strep

    def __repr__(self) -> str:
        return (
            f"RtpPacket(pt={self.payload_type}, m={self.marker}, seq={self.sequence}, "
            f"ts={self.timestamp}, ssrc={self.ssrc:#010x}, payload={len(self.payload)}B"
            + (f", strep={self.strep!r}" if self.strep else "")
            + ")"
        )


def _parse_strep(data: bytes) -> tuple[StrepHeader, int]:
    if len(data) < STREP_HEADER_SIZE:
        raise RtpError("truncated", f"STREP header needs 24 bytes, got {len(data)}")
    b0, length = data[0], data[1]
    version = (b0 >> 2) & 0x0F
    if version != _STREP_VERSION:
        raise RtpError("bad_strep", f"STREP version {version}, expected {_STREP_VERSION}")
    if length < STREP_HEADER_SIZE or length > len(data):
        raise RtpError("bad_strep", f"STREP header length {length} in a {len(data)}-byte datagram")
    header = StrepHeader(
        "B" if b0 & 0x02 else "A",
        "outbound" if b0 & 0x01 else "inbound",
        data[8:24],
    )
    return header, length


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram (plain RTP, or STREP + RTP). Raises :class:`RtpError` when malformed."""
    strep = None
    offset = 0
    if data and data[0] >> 6 == 3:
        strep, offset = _parse_strep(data)
    size = len(data)
    if size - offset < RTP_HEADER_SIZE:
        raise RtpError("truncated", f"RTP header needs 12 bytes, got {size - offset}")
    b0, b1, sequence, timestamp, ssrc = _HEADER.unpack_from(data, offset)
    if b0 >> 6 != 2:
        raise RtpError("bad_version", f"RTP version {b0 >> 6}, expected 2")
    if 200 <= b1 <= 204:
        raise RtpError("rtcp", f"RTCP packet type {b1} (RFC 5761 multiplexing)")
    pos = offset + RTP_HEADER_SIZE
    csrcs = _NO_CSRCS
    if cc := b0 & 0x0F:
        if pos + 4 * cc > size:
            raise RtpError("csrc_past_end", f"{cc} CSRCs do not fit in {size - pos} bytes")
        csrcs = struct.unpack_from(f"!{cc}I", data, pos)
        pos += 4 * cc
    extension = None
    if b0 & 0x10:
        if pos + 4 > size:
            raise RtpError("extension_past_end", "header extension header truncated")
        profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
        end = pos + 4 + 4 * words
        if end > size:
            raise RtpError("extension_past_end", f"extension of {4 * words} bytes past the end")
        extension = (profile, data[pos + 4 : end])
        pos = end
    end = size
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or padding > size - pos:
            raise RtpError("bad_padding", f"padding {padding} with {size - pos} bytes after header")
        end -= padding
    return RtpPacket(
        b1 & 0x7F, b1 > 0x7F, sequence, timestamp, ssrc, data[pos:end], csrcs, extension, strep
    )


def build_rtp(
    payload: bytes,
    *,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Build an RTP packet; ``extension`` data must be a multiple of 4 bytes."""
    b0 = 0x80 | len(csrcs) | (0x20 if padding else 0) | (0x10 if extension else 0)
    parts = [
        _HEADER.pack(
            b0,
            (0x80 if marker else 0) | payload_type,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        ),
        struct.pack(f"!{len(csrcs)}I", *csrcs),
    ]
    if extension is not None:
        profile, ext_data = extension
        if len(ext_data) % 4:
            raise ValueError("extension data must be a multiple of 4 bytes")
        parts.append(_EXTENSION_HEADER.pack(profile, len(ext_data) // 4) + ext_data)
    parts.append(payload)
    if padding:
        parts.append(bytes(padding - 1) + bytes([padding]))
    return b"".join(parts)


def build_strep(call_leg_id: bytes, *, leg: Literal["A", "B"], track: Track) -> bytes:
    """The 24-byte legacy STREP header to put in front of an RTP packet."""
    if len(call_leg_id) != 16:
        raise ValueError("call_leg_id must be 16 bytes")
    b0 = 0xC0 | _STREP_VERSION << 2 | (0x02 if leg == "B" else 0)
    b0 |= 0x01 if track == "outbound" else 0
    return bytes([b0, STREP_HEADER_SIZE]) + bytes(6) + call_leg_id
