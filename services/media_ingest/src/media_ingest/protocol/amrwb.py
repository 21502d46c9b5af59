"""AMR-WB RTP payloads (RFC 4867 section 4) -> storage-format frames (section 5.3) for a decoder.

An RTP payload is a 4-bit CMR, a table of contents (one entry per frame: F = more follow, FT =
frame type, Q = quality) and the frames' speech bits. In octet-aligned mode every field is padded
to whole bytes (CMR byte, ToC bytes, frames); in bandwidth-efficient mode the fields follow each
other bit by bit and only the payload's end is padded. A decoder takes one frame at a time as
``ToC byte + speech bits padded to bytes``. Interleaving and frame CRCs (negotiated options)
are not supported.
"""

from typing import Literal

AmrWbMode = Literal["auto", "octet-aligned", "bandwidth-efficient"]

#: Speech bits per frame type: modes 0-8 (6.60 ... 23.85 kbit/s), 9 = SID, 10-13 reserved
#: (None), 14 = SPEECH_LOST, 15 = NO_DATA.
FRAME_BITS: tuple[int | None, ...] = (
    132,
    177,
    253,
    285,
    317,
    365,
    397,
    461,
    477,
    40,
    None,
    None,
    None,
    None,
    0,
    0,
)


def _frame_bits(frame_type: int) -> int:
    bits = FRAME_BITS[frame_type]
    if bits is None:
        raise ValueError(f"reserved frame type {frame_type}")
    return bits


def _octet_aligned(payload: bytes, strict: bool) -> list[bytes]:
    size = len(payload)
    if size < 2:
        raise ValueError(f"octet-aligned payload of {size} bytes has no table of contents")
    if strict and payload[0] & 0x0F:
        raise ValueError("CMR byte reserved bits set")
    tocs = []
    pos = 1
    while True:
        if pos >= size:
            raise ValueError("table of contents runs past the end")
        toc = payload[pos]
        pos += 1
        if strict and toc & 0x03:
            raise ValueError("ToC padding bits set")
        tocs.append(toc)
        if not toc & 0x80:
            break
    frames = []
    for toc in tocs:
        end = pos + (_frame_bits(toc >> 3 & 0x0F) + 7) // 8
        if end > size:
            raise ValueError("frame data runs past the end")
        frames.append(bytes((toc & 0x7C,)) + payload[pos:end])
        pos = end
    if strict and pos != size:
        raise ValueError(f"{size - pos} bytes after the last frame")
    return frames


def _bandwidth_efficient(payload: bytes, strict: bool) -> list[bytes]:
    total = 8 * len(payload)
    value = int.from_bytes(payload, "big")

    def field(start: int, width: int) -> int:
        return (value >> (total - start - width)) & ((1 << width) - 1)

    tocs = []
    pos = 4  # CMR
    while True:
        if pos + 6 > total:
            raise ValueError("table of contents runs past the end")
        toc = field(pos, 6)
        pos += 6
        tocs.append(toc)
        if not toc & 0x20:
            break
    frames = []
    for toc in tocs:
        frame_type = toc >> 1 & 0x0F
        bits = _frame_bits(frame_type)
        if pos + bits > total:
            raise ValueError("frame data runs past the end")
        size = (bits + 7) // 8
        data = field(pos, bits) << (8 * size - bits)
        frames.append(bytes((frame_type << 3 | (toc & 1) << 2,)) + data.to_bytes(size, "big"))
        pos += bits
    if strict and (pos + 7) // 8 != len(payload):
        raise ValueError(f"{len(payload) - (pos + 7) // 8} bytes after the last frame")
    return frames


def amrwb_storage_frames(payload: bytes, mode: AmrWbMode = "auto") -> list[bytes]:
    """Split one RTP payload into decoder frames. ``auto`` takes the payload as octet-aligned when
    it parses exactly as such (reserved bits zero, sizes adding up), else as bandwidth-efficient.
    Raises ValueError for a payload that fits neither."""
    if mode == "octet-aligned":
        return _octet_aligned(payload, strict=False)
    if mode == "bandwidth-efficient":
        return _bandwidth_efficient(payload, strict=False)
    try:
        return _octet_aligned(payload, strict=True)
    except ValueError:
        return _bandwidth_efficient(payload, strict=True)
