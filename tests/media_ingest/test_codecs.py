from pathlib import Path

import av
import numpy as np
import pytest

from media_ingest.protocol.amrwb import amrwb_storage_frames
from media_ingest.protocol.codecs import (
    CodecError,
    CodecSpec,
    PayloadTypes,
    Resampler,
    UnsupportedCodec,
    codec_spec,
    g711_encode,
    make_decoder,
    parse_payload_map,
)

FIXTURES = Path(__file__).with_name("fixtures")


def tone(rate: int, seconds: float, freq: float = 440.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def av_encode(codec: str, pcm: np.ndarray, rate: int, frame: int, **options: int) -> list[bytes]:
    enc = av.CodecContext.create(codec, "w")
    enc.sample_rate, enc.layout, enc.format = rate, "mono", "s16"
    for key, value in options.items():
        setattr(enc, key, value)
    enc.open()
    packets = []
    for start in range(0, len(pcm) - frame + 1, frame):
        chunk = pcm[None, start : start + frame]
        f = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        f.sample_rate, f.pts = rate, start
        packets += [bytes(p) for p in enc.encode(f)]
    return packets + [bytes(p) for p in enc.encode(None)]


def av_decode(codec: str, packets: list[bytes], rate: int) -> np.ndarray:
    dec = av.CodecContext.create(codec, "r")
    dec.sample_rate, dec.layout = rate, "mono"
    frames = [f for p in packets for f in dec.decode(av.Packet(p))]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


# --- G.711: ITU-T G.191 reference algorithm, scalar, as the oracle -------------------------------


def g191_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix += (iexp << 4) - 16
    return (ix | 0x80 if x >= 0 else ix) ^ 0x55


def g191_ulaw_compress(x: int) -> int:
    absno = min((((~x) >> 2) if x < 0 else (x >> 2)) + 33, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno, i = segno + 1, i >> 1
    out = ((8 - segno) << 4) | (15 - ((absno >> segno) & 15))
    return out | 0x80 if x >= 0 else out


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


@pytest.mark.parametrize(
    ("law", "oracle"), [("PCMU", g191_ulaw_compress), ("PCMA", g191_alaw_compress)]
)
def test_g711_encoder_is_bit_exact_for_every_input(law: str, oracle) -> None:
    expected = bytes(oracle(int(v)) for v in ALL_INT16[::7])
    assert g711_encode(ALL_INT16[::7], law) == expected


@pytest.mark.parametrize(("law", "ffmpeg"), [("PCMU", "pcm_mulaw"), ("PCMA", "pcm_alaw")])
def test_g711_decoder_matches_ffmpeg_for_every_code(law: str, ffmpeg: str) -> None:
    decoder = make_decoder(codec_spec(law))
    assert decoder.sample_rate == 8000
    codes = bytes(range(256))
    decoded = decoder.decode(codes)
    assert decoded.dtype == np.int16
    assert np.array_equal(decoded, av_decode(ffmpeg, [codes], 8000))
    # encoding a decoded value gives back a code that decodes to the same value
    assert np.array_equal(decoder.decode(g711_encode(decoded, law)), decoded)


def test_g711_round_trip_of_a_tone() -> None:
    pcm = tone(8000, 0.1)
    for law in ("PCMU", "PCMA"):
        payload = g711_encode(pcm, law)
        decoded = make_decoder(codec_spec(law)).decode(payload)
        assert len(payload) == len(decoded) == 800
        assert np.max(np.abs(decoded.astype(int) - pcm)) < 8000 * 0.04


def test_l16_is_big_endian_and_mono_mixdown() -> None:
    pcm = tone(16000, 0.02)
    payload = b"".join(av_encode("pcm_s16be", pcm, 16000, 320))
    assert payload == pcm.astype(">i2").tobytes()
    decoder = make_decoder(codec_spec("audio/L16;rate=16000"))
    assert decoder.sample_rate == 16000
    assert np.array_equal(decoder.decode(payload), pcm)
    stereo = make_decoder(PayloadTypes().get(10))
    assert stereo.sample_rate == 44100
    both = np.array([[1000, 3000], [-10, -30]], ">i2").tobytes()
    assert stereo.decode(both).tolist() == [2000, -20]


def test_g722_decodes_like_ffmpeg_at_16khz() -> None:
    pcm = tone(16000, 0.2, freq=1000)
    packets = av_encode("g722", pcm, 16000, 320)
    decoder = make_decoder(PayloadTypes().get(9))
    assert (decoder.spec.clock_rate, decoder.sample_rate) == (8000, 16000)
    mine = np.concatenate([decoder.decode(p) for p in packets])
    assert len(mine) == 320 * len(packets)
    assert np.array_equal(mine, av_decode("g722", packets, 16000))
    assert np.std(mine[800:]) == pytest.approx(np.std(pcm), rel=0.1)


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(float) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


def test_opus_decodes_mono_at_48k_and_resamples_to_16k() -> None:
    pcm = tone(48000, 0.5)
    packets = av_encode("libopus", pcm, 48000, 960, bit_rate=32000)
    spec = PayloadTypes().get(96)
    assert (spec.name, spec.clock_rate, spec.channels) == ("OPUS", 48000, 2)
    full = make_decoder(spec)
    mine = np.concatenate([full.decode(p) for p in packets])
    assert np.array_equal(mine, av_decode("libopus", packets, 48000))
    narrow = make_decoder(spec, opus_rate=16000)
    assert narrow.sample_rate == 16000
    low = np.concatenate([narrow.decode(p) for p in packets])
    assert abs(len(low) - len(mine) / 3) <= 64
    assert dominant_frequency(low[1600:], 16000) == pytest.approx(440, abs=5)


def test_resampler_keeps_duration_over_blocks() -> None:
    resampler = Resampler(8000, 16000)
    pcm = tone(8000, 1.0)
    out = np.concatenate(
        [resampler.resample(pcm[i : i + 800]) for i in range(0, 8000, 800)] + [resampler.flush()]
    )
    assert len(out) == 16000
    assert dominant_frequency(out, 16000) == pytest.approx(440, abs=3)


# --- AMR-WB ------------------------------------------------------------------------------------

FRAME_BITS = (132, 177, 253, 285, 317, 365, 397, 461, 477, 40, 0, 0, 0, 0, 0, 0)


def storage_frames() -> list[bytes]:
    data = (FIXTURES / "speech_modes.awb").read_bytes()
    assert data.startswith(b"#!AMR-WB\n")
    frames, pos = [], 9
    while pos < len(data):
        size = 1 + (FRAME_BITS[data[pos] >> 3 & 15] + 7) // 8
        frames.append(data[pos : pos + size])
        pos += size
    return frames


def rtp_payload(frames: list[bytes], octet_aligned: bool, cmr: int = 15) -> bytes:
    """RFC 4867 section 4.3/4.4 payload, written the plain way: as a string of bits."""
    bits = f"{cmr:04b}" + ("0000" if octet_aligned else "")
    for index, frame in enumerate(frames):
        follow = "1" if index < len(frames) - 1 else "0"
        ft, q = frame[0] >> 3 & 15, frame[0] >> 2 & 1
        bits += follow + f"{ft:04b}" + str(q) + ("00" if octet_aligned else "")
    for frame in frames:
        speech = "".join(f"{b:08b}" for b in frame[1:])[: FRAME_BITS[frame[0] >> 3 & 15]]
        bits += speech + ("0" * (-len(speech) % 8) if octet_aligned else "")
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


@pytest.mark.parametrize("mode", ["octet-aligned", "bandwidth-efficient", "auto"])
@pytest.mark.parametrize("per_packet", [1, 3])
def test_amrwb_rtp_payloads_decode_like_the_storage_file(mode: str, per_packet: int) -> None:
    frames = storage_frames()
    kinds = {f[0] >> 3 & 15 for f in frames}
    assert set(range(10)) | {15} <= kinds  # every mode, SID and NO_DATA are exercised
    reference = av_decode("libopencore_amrwb", frames, 16000)
    octet = mode == "octet-aligned" or (mode == "auto" and per_packet == 1)
    decoder = make_decoder(codec_spec("AMR-WB"), amrwb_mode=mode)  # type: ignore[arg-type]
    assert decoder.sample_rate == 16000
    groups = [frames[i : i + per_packet] for i in range(0, len(frames), per_packet)]
    payloads = [rtp_payload(g, octet, cmr=i % 16) for i, g in enumerate(groups)]
    mine = np.concatenate([decoder.decode(p) for p in payloads])
    assert len(mine) == 320 * len(frames)
    assert np.array_equal(mine, reference)
    assert np.std(reference[:16000]) > 1000  # speech, not silence


def test_amrwb_storage_frames_split_payloads_exactly() -> None:
    frames = storage_frames()[:5]
    for octet in (True, False):
        mode = "octet-aligned" if octet else "bandwidth-efficient"
        assert amrwb_storage_frames(rtp_payload(frames, octet), mode) == frames
        assert amrwb_storage_frames(rtp_payload(frames, octet), "auto") == frames


@pytest.mark.parametrize(
    "payload", [b"", b"\xf0", b"\xf0\x44\x00", b"\xf0\xd4", b"\xf5\x54" + bytes(40)]
)
def test_amrwb_malformed_payloads_raise_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError, match="AMR-WB"):
        make_decoder(codec_spec("AMR-WB")).decode(payload)


# --- registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("PCMU", CodecSpec("PCMU", 8000)),
        ("audio/x-mulaw", CodecSpec("PCMU", 8000)),
        ("audio/x-alaw", CodecSpec("PCMA", 8000)),
        ("pcma", CodecSpec("PCMA", 8000)),
        ("G722", CodecSpec("G722", 8000)),
        ("OPUS", CodecSpec("OPUS", 48000)),
        ("opus/48000/2", CodecSpec("OPUS", 48000, 2)),
        ("AMR-WB", CodecSpec("AMR-WB", 16000)),
        ("AMR-WB/16000", CodecSpec("AMR-WB", 16000)),
        ("L16", CodecSpec("L16", 16000)),
        ("audio/L16;rate=8000;channels=1", CodecSpec("L16", 8000)),
        ("telephone-event/8000", CodecSpec("telephone-event", 8000)),
    ],
)
def test_encoding_names(encoding: str, expected: CodecSpec) -> None:
    assert codec_spec(encoding) == expected


def test_payload_types_static_dynamic_and_unsupported() -> None:
    types = PayloadTypes()
    assert types.get(0) == CodecSpec("PCMU", 8000) and types.get(8) == CodecSpec("PCMA", 8000)
    assert types.get(11) == CodecSpec("L16", 44100)
    assert not types.get(101).is_audio and not types.get(13).is_audio
    custom = PayloadTypes(parse_payload_map("97=AMR-WB/16000, 100=opus/48000/2"))
    assert custom.get(97).name == "AMR-WB" and custom.get(100).name == "OPUS"
    with pytest.raises(UnsupportedCodec, match="dynamic payload type with no mapping 96"):
        custom.get(96)
    with pytest.raises(UnsupportedCodec, match="payload type 18"):
        types.get(18)  # G.729
    with pytest.raises(UnsupportedCodec, match="unsupported encoding 'G729'"):
        codec_spec("G729")
    with pytest.raises(UnsupportedCodec, match="no audio"):
        make_decoder(types.get(101))
    with pytest.raises(ValueError, match="96-127"):
        parse_payload_map("8=PCMA")
