"""G.711 µ-law (PCMU) and A-law (PCMA) through lookup tables, with numpy.

Encoding indexes a 65,536-entry table by the 16-bit sample, decoding a 256-entry table by the
code; the tables are built once, on first use (no work at import).
"""

from functools import cache

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


@cache
def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as the reference (Sun g711.c)
    mask = np.where(x < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(x), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(
        np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), value, side="left"
    )
    code = (np.minimum(segment, 7) << 4) | ((value >> (np.minimum(segment, 7) + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return np.roll(
        (code ^ mask).astype(np.uint8), -32768
    )  # index by the sample's uint16 bit pattern


@cache
def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + _ULAW_BIAS << exponent) - _ULAW_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


@cache
def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 3
    positive = x >= 0
    mask = np.where(positive, 0xD5, 0x55)
    value = np.where(positive, x, -x - 1)
    segment = np.searchsorted(
        np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), value, side="left"
    )
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((value >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return np.roll((code ^ mask).astype(np.uint8), -32768)


@cache
def _alaw_decode_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(segment == 0, t + 8, t + 0x108)
    t = np.where(segment > 1, t << np.maximum(segment - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def ulaw_encode(samples: Samples) -> bytes:
    return _ulaw_encode_table()[samples.view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> Samples:
    return _ulaw_decode_table()[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(samples: Samples) -> bytes:
    return _alaw_encode_table()[samples.view(np.uint16)].tobytes()


def alaw_decode(data: bytes) -> Samples:
    return _alaw_decode_table()[np.frombuffer(data, dtype=np.uint8)]
