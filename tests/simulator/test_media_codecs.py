"""Pure parts of the simulator: G.711, RTP headers, WAV legs, call scripts; and the server runner."""

import struct
import warnings
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from telnyx_simulator.audio import CallAudio
from telnyx_simulator.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from telnyx_simulator.rtp import RtpStream
from telnyx_simulator.script import ScriptLine, parse_script
from telnyx_simulator.serve import serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference G.711 (Sun's g711.c), still in Python 3.11


def test_g711_matches_the_reference_for_every_sample_and_code() -> None:
    samples = np.arange(-32768, 32768, dtype=np.int16)
    pcm = samples.astype("<i2").tobytes()
    codes = bytes(range(256))
    assert ulaw_encode(samples) == audioop.lin2ulaw(pcm, 2)
    assert alaw_encode(samples) == audioop.lin2alaw(pcm, 2)
    assert ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)
    assert alaw_decode(codes).astype("<i2").tobytes() == audioop.alaw2lin(codes, 2)


def test_rtp_sequence_and_timestamp_wrap_around() -> None:
    stream = RtpStream(payload_type=8, ssrc=0xDEADBEEF, sequence=65535, timestamp=2**32 - 100)
    first, second = stream.packet(b"a" * 160, 160), stream.packet(b"b" * 160, 160)
    assert struct.unpack("!BBHII", first[:12]) == (0x80, 0x80 | 8, 65535, 2**32 - 100, 0xDEADBEEF)
    assert struct.unpack("!BBHII", second[:12]) == (0x80, 8, 0, 60, 0xDEADBEEF)
    assert second[12:] == b"b" * 160


def test_mono_wav_is_the_inbound_leg_and_frames_pad_with_silence(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.full(200, 1234, dtype="<i2").tobytes())
    audio = CallAudio.from_wav(path)
    assert audio.seconds == 200 / 8000
    assert (audio.frame("inbound", 0) == 1234).all() and (audio.frame("outbound", 0) == 0).all()
    assert (audio.frame("inbound", 1)[:40] == 1234).all() and (
        audio.frame("inbound", 1)[40:] == 0
    ).all()

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(320))
    with pytest.raises(ValueError, match="8000"):
        CallAudio.from_wav(path)


def test_script_lines_take_their_side_from_the_prefix() -> None:
    script = parse_script(
        "# a comment\n\nInbound: Hello there\noutbound:  Hi!\nno prefix means the caller\noutbound:\n"
    )
    assert script == [
        ScriptLine("inbound", "Hello there"),
        ScriptLine("outbound", "Hi!"),
        ScriptLine("inbound", "no prefix means the caller"),
    ]


async def test_serve_yields_a_working_url_and_frees_the_port() -> None:
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("up"))])
    async with serve(app) as url:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "up"
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)
