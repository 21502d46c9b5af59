"""Audio codecs of Telnyx media: RTP payload -> 16-bit signed mono PCM (numpy int16).

G.711 uses numpy lookup tables (bit-exact to ITU-T G.711, about 2 µs a packet); L16 is a byte
swap; G.722, Opus and AMR-WB go through PyAV (FFmpeg, libopus, opencore-amrwb). Each decoder
object keeps the codec state of one stream: one per leg and payload type.

``clock_rate`` is the RTP timestamp rate, ``sample_rate`` the rate of the PCM a decoder returns;
they differ for G.722 (8000 / 16000, RFC 3551's historical error) and may for Opus (48000 / any).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

import av
import numpy as np

from media_ingest.protocol.amrwb import AmrWbMode, amrwb_storage_frames


class UnsupportedCodec(ValueError):
    """A payload type or encoding voicetap cannot decode (the message says which and why)."""


class CodecError(ValueError):
    """A payload the codec could not decode."""


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """An RTP payload format: canonical encoding name, RTP clock rate and channel count."""

    name: str
    clock_rate: int
    channels: int = 1

    @property
    def is_audio(self) -> bool:
        """False for formats without audio samples (DTMF events, comfort noise)."""
        return self.name not in _NON_AUDIO


_NON_AUDIO = frozenset({"telephone-event", "CN"})
_DEFAULT_CLOCK = {
    "PCMU": 8000,
    "PCMA": 8000,
    "G722": 8000,
    "OPUS": 48000,
    "AMR-WB": 16000,
    "L16": 16000,
    "telephone-event": 8000,
    "CN": 8000,
}
_ALIASES = {
    "PCMU": "PCMU",
    "AUDIO/X-MULAW": "PCMU",
    "AUDIO/PCMU": "PCMU",
    "MULAW": "PCMU",
    "ULAW": "PCMU",
    "PCMA": "PCMA",
    "AUDIO/X-ALAW": "PCMA",
    "AUDIO/PCMA": "PCMA",
    "ALAW": "PCMA",
    "G722": "G722",
    "AUDIO/G722": "G722",
    "OPUS": "OPUS",
    "AUDIO/OPUS": "OPUS",
    "AMR-WB": "AMR-WB",
    "AMRWB": "AMR-WB",
    "AUDIO/AMR-WB": "AMR-WB",
    "L16": "L16",
    "AUDIO/L16": "L16",
    "TELEPHONE-EVENT": "telephone-event",
    "AUDIO/TELEPHONE-EVENT": "telephone-event",
    "CN": "CN",
    "AUDIO/CN": "CN",
}

#: RFC 3551 static payload types voicetap knows (PT 10/11: L16 stereo/mono at 44.1 kHz).
STATIC_PAYLOAD_TYPES: Mapping[int, CodecSpec] = {
    0: CodecSpec("PCMU", 8000),
    8: CodecSpec("PCMA", 8000),
    9: CodecSpec("G722", 8000),
    10: CodecSpec("L16", 44100, 2),
    11: CodecSpec("L16", 44100),
    13: CodecSpec("CN", 8000),
}

#: Dynamic payload types assumed when the caller supplies none (*unconfirmed* for Telnyx forks:
#: the SDP of the call decides; override through settings with :func:`parse_payload_map`).
DEFAULT_DYNAMIC_PAYLOAD_TYPES = "96=OPUS/48000/2,101=telephone-event/8000"


def codec_spec(encoding: str, clock_rate: int | None = None, channels: int = 1) -> CodecSpec:
    """The spec of an encoding by name (``PCMU``), MIME type (``audio/x-mulaw``,
    ``audio/L16;rate=16000``) or rtpmap (``OPUS/48000/2``); the clock rate defaults to the
    encoding's usual one."""
    text, *params = (part.strip() for part in encoding.split(";"))
    if text.lower().startswith("audio/"):
        name, rtpmap = text, []
    else:
        name, *rtpmap = text.split("/")
    canonical = _ALIASES.get(name.upper())
    if canonical is None:
        raise UnsupportedCodec(
            f"unsupported encoding {encoding!r}: voicetap decodes PCMU, PCMA, G722, OPUS, AMR-WB "
            "and L16"
        )
    if rtpmap:
        clock_rate = int(rtpmap[0])
        channels = int(rtpmap[1]) if len(rtpmap) > 1 else 1
    for key, _, value in (param.partition("=") for param in params):
        if key.lower() == "rate":
            clock_rate = int(value)
        elif key.lower() == "channels":
            channels = int(value)
    return CodecSpec(canonical, clock_rate or _DEFAULT_CLOCK[canonical], channels)


def parse_payload_map(text: str) -> dict[int, CodecSpec]:
    """Parse ``"96=OPUS/48000/2,97=AMR-WB/16000"`` (SDP rtpmap values) into payload types."""
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pt, _, rtpmap = item.partition("=")
        payload_type = int(pt)
        if not 96 <= payload_type <= 127:
            raise ValueError(f"dynamic payload types are 96-127, got {payload_type}")
        mapping[payload_type] = codec_spec(rtpmap)
    return mapping


class PayloadTypes:
    """Resolves RTP payload types: the RFC 3551 static ones plus a dynamic mapping."""

    def __init__(self, dynamic: Mapping[int, CodecSpec] | None = None) -> None:
        table = dict(STATIC_PAYLOAD_TYPES)
        if dynamic is None:
            dynamic = parse_payload_map(DEFAULT_DYNAMIC_PAYLOAD_TYPES)
        table.update(dynamic)
        self._table = table

    def get(self, payload_type: int) -> CodecSpec:
        try:
            return self._table[payload_type]
        except KeyError:
            kind = "dynamic payload type with no mapping" if payload_type >= 96 else "payload type"
            raise UnsupportedCodec(
                f"unsupported RTP {kind} {payload_type}: voicetap decodes {self._describe()} "
                "(dynamic types 96-127 are mapped by INGEST_DYNAMIC_PAYLOAD_TYPES)"
            ) from None

    def _describe(self) -> str:
        """The audio payload types on the wire, e.g. ``0 PCMU/8000, 96 OPUS/48000/2``."""
        return ", ".join(
            f"{pt} {spec.name}/{spec.clock_rate}"
            + (f"/{spec.channels}" if spec.channels > 1 else "")
            for pt, spec in sorted(self._table.items())
            if pt < 128 and spec.is_audio
        )


# --- G.711 (ITU-T G.711 as its reference software, ITU-T G.191 g711.c, does it; vectorised) ------


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


@cache
def _decode_table(law: str) -> np.ndarray:
    return _ulaw_decode_table() if law == "PCMU" else _alaw_decode_table()


@cache
def _encode_table(law: str) -> np.ndarray:
    """Code for every int16 value, indexed by the value's uint16 bit pattern."""
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    magnitude = np.where(pcm < 0, ~pcm, pcm)  # one's complement, as G.191 does
    bit_length = np.array([int(i).bit_length() for i in range(2048)])
    if law == "PCMU":
        absno = np.minimum((magnitude >> 2) + 33, 0x1FFF)
        segno = bit_length[absno >> 6] + 1
        code = ((8 - segno) << 4) | (15 - ((absno >> segno) & 0x0F))
    else:
        ix = magnitude >> 4
        exponent = np.maximum(bit_length[ix] - 4, 0)
        code = np.where(ix > 15, (ix >> np.maximum(exponent - 1, 0)) - 16 + (exponent << 4), ix)
    code |= np.where(pcm >= 0, 0x80, 0)
    table: np.ndarray = (code if law == "PCMU" else code ^ 0x55).astype(np.uint8)
    return table


def g711_encode(samples: np.ndarray, law: Literal["PCMU", "PCMA"]) -> bytes:
    """Encode int16 PCM to G.711 (for tests, the simulator and speaking back)."""
    return _encode_table(law)[np.asarray(samples, np.int16).view(np.uint16)].tobytes()


# --- decoders ----------------------------------------------------------------------------------


class Decoder(Protocol):
    spec: CodecSpec
    sample_rate: int

    def decode(self, payload: bytes) -> np.ndarray:
        """The payload's audio as a 1-D int16 array at ``sample_rate``."""
        ...


class G711Decoder:
    def __init__(self, spec: CodecSpec) -> None:
        self.spec = spec
        self.sample_rate = spec.clock_rate
        self.table = _decode_table(
            spec.name
        )  # byte -> sample: lets a timeline decode many packets at once

    def decode(self, payload: bytes) -> np.ndarray:
        return self.table[np.frombuffer(payload, np.uint8)]


class L16Decoder:
    """Big-endian 16-bit PCM (RFC 3551 section 4.5.11); multi-channel audio is averaged to mono."""

    def __init__(self, spec: CodecSpec) -> None:
        self.spec = spec
        self.sample_rate = spec.clock_rate
        self._channels = spec.channels

    def decode(self, payload: bytes) -> np.ndarray:
        samples = np.frombuffer(payload, ">i2", len(payload) // 2)
        if self._channels == 1:
            return samples.astype(np.int16)
        frames = samples[: len(samples) // self._channels * self._channels]
        mono: np.ndarray = frames.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        return mono.astype(np.int16)


class Resampler:
    """Stateful int16 mono resampler (libswresample); feed blocks, ``flush`` at the end."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)

    def resample(self, samples: np.ndarray) -> np.ndarray:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.from_rate
        return _frames_to_array(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return _frames_to_array(self._resampler.resample(None))


_EMPTY = np.zeros(0, np.int16)


def _frames_to_array(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return _EMPTY
    if len(frames) == 1:
        return frames[0].to_ndarray().reshape(-1)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


class _AvDecoder:
    """A PyAV decoder producing s16 mono."""

    def __init__(self, spec: CodecSpec, codec: str, sample_rate: int) -> None:
        self.spec = spec
        self.sample_rate = sample_rate
        context = av.CodecContext.create(codec, "r")
        if not isinstance(context, av.AudioCodecContext):
            raise UnsupportedCodec(f"{codec} is not an audio codec")
        self._ctx = context
        self._ctx.sample_rate = sample_rate
        self._ctx.layout = "mono"

    def _decode(self, data: bytes) -> np.ndarray:
        try:
            return _frames_to_array(self._ctx.decode(av.Packet(data)))
        except av.error.FFmpegError as exc:
            raise CodecError(
                f"{self.spec.name}: cannot decode {len(data)}-byte payload: {exc}"
            ) from exc

    def decode(self, payload: bytes) -> np.ndarray:
        return self._decode(payload)


class G722Decoder(_AvDecoder):
    def __init__(self, spec: CodecSpec) -> None:
        super().__init__(spec, "g722", 16000)


class OpusDecoder(_AvDecoder):
    """Opus (RFC 7587) decoded to mono by libopus at 48 kHz, resampled when asked for less."""

    def __init__(self, spec: CodecSpec, sample_rate: int = 48000) -> None:
        super().__init__(spec, "libopus", 48000)
        self.sample_rate = sample_rate
        self._resampler = Resampler(48000, sample_rate) if sample_rate != 48000 else None

    def decode(self, payload: bytes) -> np.ndarray:
        pcm = self._decode(payload)
        return self._resampler.resample(pcm) if self._resampler is not None else pcm


class AmrWbDecoder(_AvDecoder):
    """AMR-WB RTP payloads (RFC 4867, octet-aligned or bandwidth-efficient) by opencore-amrwb,
    which also makes comfort noise of SID frames and conceals lost ones."""

    def __init__(self, spec: CodecSpec, mode: AmrWbMode = "auto") -> None:
        super().__init__(spec, "libopencore_amrwb", 16000)
        self._mode = mode

    def decode(self, payload: bytes) -> np.ndarray:
        try:
            frames = amrwb_storage_frames(payload, self._mode)
        except ValueError as exc:
            raise CodecError(f"AMR-WB: {exc}") from exc
        if len(frames) == 1:
            return self._decode(frames[0])
        return np.concatenate([self._decode(frame) for frame in frames])


def make_decoder(
    spec: CodecSpec, *, opus_rate: int = 48000, amrwb_mode: AmrWbMode = "auto"
) -> Decoder:
    """A fresh decoder for one stream of ``spec``."""
    if spec.name in ("PCMU", "PCMA"):
        return G711Decoder(spec)
    if spec.name == "L16":
        return L16Decoder(spec)
    if spec.name == "G722":
        return G722Decoder(spec)
    if spec.name == "OPUS":
        return OpusDecoder(spec, opus_rate)
    if spec.name == "AMR-WB":
        return AmrWbDecoder(spec, amrwb_mode)
    raise UnsupportedCodec(f"{spec.name} carries no audio to decode")
