import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_ingest.protocol.rtp import RtpError, build_rtp, build_strep, parse_rtp


def test_plain_packet_fields() -> None:
    data = build_rtp(
        b"\xff" * 160,
        payload_type=0,
        sequence=65535,
        timestamp=2**32 - 1,
        ssrc=0xDEADBEEF,
        marker=True,
    )
    pkt = parse_rtp(data)
    assert (pkt.payload_type, pkt.marker, pkt.sequence, pkt.timestamp, pkt.ssrc) == (
        0,
        True,
        65535,
        2**32 - 1,
        0xDEADBEEF,
    )
    assert pkt.payload == b"\xff" * 160 and pkt.csrcs == () and pkt.extension is None
    assert pkt.strep is None


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(max_size=64),
    pt=st.integers(0, 127).filter(lambda p: not 72 <= p <= 76),
    seq=st.integers(0, 65535),
    ts=st.integers(0, 2**32 - 1),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    ext=st.none()
    | st.tuples(
        st.integers(0, 65535), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))
    ),
    padding=st.integers(0, 255),
    marker=st.booleans(),
)
def test_round_trip(
    payload: bytes,
    pt: int,
    seq: int,
    ts: int,
    csrcs: tuple[int, ...],
    ext: tuple[int, bytes] | None,
    padding: int,
    marker: bool,
) -> None:
    data = build_rtp(
        payload,
        payload_type=pt,
        sequence=seq,
        timestamp=ts,
        ssrc=7,
        marker=marker,
        csrcs=csrcs,
        extension=ext,
        padding=padding,
    )
    pkt = parse_rtp(data)
    assert (pkt.payload, pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.marker) == (
        payload,
        pt,
        seq,
        ts,
        marker,
    )
    assert pkt.csrcs == csrcs and pkt.extension == ext


def test_strep_wrapper_is_stripped_and_reported() -> None:
    leg_id = uuid.uuid4()
    rtp = build_rtp(b"abc", payload_type=8, sequence=1, timestamp=2, ssrc=3)
    for leg in ("A", "B"):
        for track in ("inbound", "outbound"):
            header = build_strep(leg_id.bytes, leg=leg, track=track)
            assert len(header) == 24 and header[0] >> 6 == 3 and header[1] == 24
            pkt = parse_rtp(header + rtp)
            assert pkt.payload == b"abc" and pkt.payload_type == 8
            assert pkt.strep is not None
            assert (pkt.strep.leg, pkt.strep.track, pkt.strep.call_leg_uuid) == (leg, track, leg_id)
    # byte 0 as TELNYX.md spells it: 11 | version 0001 | L | D
    assert build_strep(leg_id.bytes, leg="B", track="outbound")[0] == 0b11000111


def _raw(b0: int, rest: bytes = b"") -> bytes:
    return struct.pack("!BBHII", b0, 0, 1, 2, 3) + rest


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x80\x00\x00", "truncated"),
        (_raw(0x40), "bad_version"),
        (_raw(0x00), "bad_version"),
        (_raw(0x83, b"\x00" * 8), "csrc_past_end"),
        (_raw(0x90, b"\x00\x01"), "extension_past_end"),
        (_raw(0x90, b"\xbe\xde\x00\x02" + b"\x00" * 4), "extension_past_end"),
        (_raw(0xA0, b"ab\x05"), "bad_padding"),
        (_raw(0xA0, b"ab\x00"), "bad_padding"),
        (struct.pack("!BBHII", 0x80, 200, 6, 0, 0), "rtcp"),
        (b"\xc4\x18" + bytes(10), "truncated"),
        (b"\xc8\x18" + bytes(22) + _raw(0x80), "bad_strep"),
        (b"\xc4\x10" + bytes(22) + _raw(0x80), "bad_strep"),
        (b"\xc4\x18" + bytes(22) + _raw(0x40), "bad_version"),
    ],
)
def test_malformed_input_raises_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as info:
        parse_rtp(data)
    assert info.value.reason == reason


def test_padding_exactly_filling_the_payload_is_valid() -> None:
    pkt = parse_rtp(_raw(0xA0, b"\x00\x00\x03"))
    assert pkt.payload == b""
