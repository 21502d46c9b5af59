"""Forked RTP into a running instance: real UDP senders (the simulator's, ffmpeg's, hand-made
impaired streams), real Redis, the fake Telnyx API through the real SDK."""

import asyncio
import secrets
import shutil
import socket
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from media_ingest.protocol.codecs import CodecSpec, G711Decoder, g711_encode
from media_ingest.protocol.rtp import build_rtp
from media_ingest.protocol.wav import read_wav
from telnyx_simulator.audio import CallAudio
from telnyx_simulator.g711 import ulaw_decode, ulaw_encode
from telnyx_simulator.rtp import ForkLeg, RtpFork, strep_header
from tests.media_ingest.harness import (
    at_least,
    ingest_settings,
    locate,
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_codecs import av_decode, av_encode
from tests.system_parts import missing
from voicetap_sdk.topics import MEDIA_ANALYTICS, MEDIA_ERROR

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it

ULAW = G711Decoder(CodecSpec("PCMU", 8000))


def round_trip(pcm: np.ndarray) -> np.ndarray:
    """The codec's own round trip of the source: what a perfect receiver records."""
    return ULAW.decode(ulaw_encode(pcm))


async def send_fork(
    audio: CallAudio, rx: int, tx: int, seconds: float, start_frame: int = 0
) -> RtpFork:
    fork = RtpFork(
        audio,
        [ForkLeg("inbound", "127.0.0.1", rx), ForkLeg("outbound", "127.0.0.1", tx)],
        "PCMU",
        start_frame,
    )
    task = asyncio.create_task(fork.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return fork


async def test_simulator_rtp_is_recorded_sample_exact_and_garbage_changes_nothing(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(4, 1), noise(4, 2))
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        result = await run_command(redis, "fork_start", ccid)
        assert result["ok"], result
        rx, tx = target_port(result["allocated"]["rx"]), target_port(result["allocated"]["tx"])
        [request] = fake.state.requests_for(ccid, "fork_start")
        assert (
            request.body["rx"] == f"udp:127.0.0.1:{rx}"
            and request.body["tx"] == f"udp:127.0.0.1:{tx}"
        )
        assert request.body["stream_type"] == "decrypted"

        sender = asyncio.create_task(send_fork(audio, rx, tx, 2.0))
        await asyncio.sleep(
            0.5
        )  # latched by now: everything below comes from strangers or is garbage
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        loud = g711_encode(np.full(160, 20000, np.int16), "PCMU")
        for k in range(20):
            stranger.sendto(
                build_rtp(loud, payload_type=0, sequence=k, timestamp=160 * k, ssrc=7),
                ("127.0.0.1", rx),
            )
        stranger.close()
        fork = await sender
        # garbage from yet another address: dropped before parsing, like the stranger's packets
        garbage = [b"", b"\x80", b"hello world", b"\x00" * 40, bytes([0x80, 200]) + b"\x00" * 30]
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for datagram in garbage:
            other.sendto(datagram, ("127.0.0.1", rx))
        other.close()
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid, hangup_cause="normal_clearing")
        event = await recording_completed(redis, ccid)

    assert event["codec"] == "PCMU" and event["sample_rate"] == 8000
    assert event["channels"] == {"left": "inbound", "right": "outbound"}
    assert event["paused"] == [] and event["recovered"] is False and event["reason"] == "hangup"
    inbound, outbound = event["legs"]["inbound"], event["legs"]["outbound"]
    assert (
        inbound["received"] == fork.sent["inbound"]
        and outbound["received"] == fork.sent["outbound"]
    )
    assert inbound["lost"] == inbound["duplicated"] == inbound["reordered"] == 0
    assert inbound["foreign"] == 20 + len(garbage)  # the stranger, and garbage from another address
    assert inbound["jitter_ms"] < 20
    rate, frames = read_wav(Path(event["path"]))
    assert rate == 8000 and abs(event["duration"] - len(frames) / 8000) < 0.01
    for channel, pcm, sent in (
        (0, audio.inbound, fork.sent["inbound"]),
        (1, audio.outbound, fork.sent["outbound"]),
    ):
        reference = round_trip(pcm[: sent * 160])
        offset = locate(frames[:, channel], reference)
        assert offset >= 0, "the first packet's audio is not in the recording"
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)
        assert not frames[:offset, channel].any()  # silence before the media started
    assert not (np.abs(frames[:, 0]) >= 20000).any()  # nothing of the stranger's loud audio
    assert await topic_events(redis, MEDIA_ANALYTICS)


async def test_garbage_from_the_latched_source_is_counted_and_dropped(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    pcm = noise(1, 3)
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (_, _url):
        result = await run_command(redis, "fork_start", ccid)
        rx = target_port(result["allocated"]["rx"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        garbage = [
            b"\x80",
            b"hello world",
            bytes([0x80, 200]) + b"\x00" * 30,
            bytes([0x8F, 0]) + b"\x00" * 10,
            bytes([0x40]) + b"\x00" * 20,
        ]
        for k in range(50):
            payload = g711_encode(pcm[k * 160 : (k + 1) * 160], "PCMU")
            sock.sendto(
                build_rtp(
                    payload, payload_type=0, sequence=100 + k, timestamp=8000 + 160 * k, ssrc=99
                ),
                ("127.0.0.1", rx),
            )
            if k % 10 == 5:
                sock.sendto(garbage[k // 10], ("127.0.0.1", rx))
            await asyncio.sleep(0.02)
        sock.close()
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    inbound = event["legs"]["inbound"]
    assert inbound["malformed"] == 5 and inbound["received"] == 50 and inbound["lost"] == 0
    _, frames = read_wav(Path(event["path"]))
    reference = ULAW.decode(g711_encode(pcm[: 50 * 160], "PCMU"))
    offset = locate(frames[:, 0], reference)
    np.testing.assert_array_equal(frames[offset : offset + len(reference), 0], reference)


async def test_loss_reordering_duplicates_wraparound_and_ssrc_change_stay_aligned(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    pcm = noise(3, 4)
    packets = len(pcm) // 160
    lost, swapped, duplicated, change = {20, 45}, 30, {10, 60}, 100  # packet indices
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (_, _url):
        result = await run_command(redis, "fork_start", ccid)
        rx = target_port(result["allocated"]["rx"])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def datagram(k: int) -> bytes:
            payload = g711_encode(pcm[k * 160 : (k + 1) * 160], "PCMU")
            if k < change:  # sequence numbers wrap at 65535 around packet 16
                return build_rtp(
                    payload,
                    payload_type=0,
                    sequence=(65520 + k) & 0xFFFF,
                    timestamp=(2**32 - 4000 + 160 * k) & 0xFFFFFFFF,
                    ssrc=0x1111,
                )
            return build_rtp(
                payload, payload_type=0, sequence=500 + k, timestamp=777_000 + 160 * k, ssrc=0x2222
            )

        order = [k for k in range(packets) if k not in lost]
        i = order.index(swapped)
        order[i], order[i + 1] = order[i + 1], order[i]
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, k in enumerate(order):
            sock.sendto(datagram(k), ("127.0.0.1", rx))
            if k in duplicated:
                sock.sendto(datagram(k), ("127.0.0.1", rx))
            await asyncio.sleep(max(started + (n + 1) * 0.02 - loop.time(), 0))
        sock.close()
        await asyncio.sleep(0.3)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)

    inbound = event["legs"]["inbound"]
    assert inbound["lost"] == 2 and inbound["duplicated"] == 2 and inbound["reordered"] == 1
    assert inbound["ssrc_changes"] == 1 and inbound["received"] == packets - 2 + 2
    _, frames = read_wav(Path(event["path"]))
    left = frames[:, 0]
    reference = ULAW.decode(g711_encode(pcm[: packets * 160], "PCMU"))
    offset = locate(left, reference)
    assert offset >= 0
    # first stream: every packet at its place, the lost ones silent
    for k in range(change):
        got = left[offset + k * 160 : offset + (k + 1) * 160]
        if k in lost:
            assert not got.any(), f"lost packet {k} is not silence"
        else:
            np.testing.assert_array_equal(
                got, reference[k * 160 : (k + 1) * 160], err_msg=f"packet {k}"
            )
    # the new SSRC is anchored at its arrival: exact audio, within a packet of where it belongs
    second = reference[change * 160 :]
    where = locate(left, second)
    assert abs(where - (offset + change * 160)) <= 160
    np.testing.assert_array_equal(left[where : where + len(second)], second)


async def test_the_automatic_path_from_call_answered_to_recording_completed(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(2, 5), noise(2, 6))
    settings = ingest_settings(tmp_path, redis_url, fake.url)
    async with running(settings) as (service, url):
        answered = await publish_webhook(redis, "call.answered", ccid, state="answered")
        [request] = await wait_for(lambda: _requests(fake, ccid, "fork_start"), what="fork_start")
        rx_port = target_port(request.body["rx"])  # a re-execution to other ports is not a repeat
        assert request.body["command_id"] == f"voicetap:fork_start:{answered['id']}:{rx_port}"
        assert request.headers["authorization"] == "Bearer KEYsimulator_test"
        rx, tx = target_port(request.body["rx"]), target_port(request.body["tx"])
        assert rx in settings.rtp_port_range() and tx == rx + 1
        assert request.body["rx"].startswith("udp:127.0.0.1:")
        # a redelivered answered starts nothing more
        await publish_webhook(redis, "call.answered", ccid, state="answered")
        fork = await send_fork(audio, rx, tx, 1.5)
        await asyncio.sleep(0.2)
        assert service.allocator.in_use == 1
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        assert service.allocator.in_use == 0 and len(service.calls) == 0
        assert len(fake.state.requests_for(ccid, "fork_start")) == 1
    assert event["legs"]["inbound"]["received"] == fork.sent["inbound"]
    assert event["duration"] >= 1.5 and event["media"] == ["fork"]
    assert Path(event["path"]) == (tmp_path / "recordings" / f"{ccid}.wav").resolve()
    assert not list((tmp_path / "spool").iterdir())  # stored: nothing left to repair or upload
    _, frames = read_wav(Path(event["path"]))
    reference = round_trip(audio.inbound[: fork.sent["inbound"] * 160])
    offset = locate(frames[:, 0], reference)
    np.testing.assert_array_equal(frames[offset : offset + len(reference), 0], reference)


async def test_a_call_with_no_media_gets_a_silent_recording(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        assert (await run_command(redis, "fork_start", ccid))["ok"]
        await asyncio.sleep(1.0)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    _, frames = read_wav(Path(event["path"]))
    assert event["duration"] >= 0.9 and abs(len(frames) / 8000 - event["duration"]) <= 0.001
    assert not frames.any() and event["codec"] is None


async def test_media_silent_past_the_timeout_ends_the_call(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    async with running(
        ingest_settings(tmp_path, redis_url, fake.url, ingest_media_timeout_seconds=1.0)
    ) as (service, _):
        assert (await run_command(redis, "fork_start", ccid))["ok"]
        event = await recording_completed(redis, ccid, timeout=5)
        assert event["reason"] == "media_timeout" and service.allocator.in_use == 0


async def test_ffmpeg_rtp_is_recorded_sample_exact(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        missing("ffmpeg", "install it (Debian: apt-get install ffmpeg; .ci/run does)")
    source = tmp_path / "in.wav"
    pcm = noise(2, 7)
    with wave.open(str(source), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm.astype("<i2").tobytes())
    # the codec's own round trip of the source: ffmpeg's encoder, decoded by the G.711 table
    encoded = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(source),
            "-ac",
            "1",
            "-ar",
            "8000",
            "-acodec",
            "pcm_mulaw",
            "-f",
            "mulaw",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    reference = ulaw_decode(encoded)
    call = fake.state.create_call()
    ccid = call.call_control_id
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        result = await run_command(redis, "fork_start", ccid)
        rx = target_port(result["allocated"]["rx"])
        process = await asyncio.create_subprocess_exec(
            ffmpeg,
            "-v",
            "error",
            "-re",
            "-i",
            str(source),
            "-ac",
            "1",
            "-ar",
            "8000",
            "-acodec",
            "pcm_mulaw",
            "-f",
            "rtp",
            f"rtp://127.0.0.1:{rx}?rtcpport={rx}",  # its RTCP comes first, from another port
        )
        assert await asyncio.wait_for(process.wait(), 20) == 0
        await asyncio.sleep(0.3)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    inbound = event["legs"]["inbound"]
    assert inbound["lost"] == 0 and inbound["codec"] == "PCMU" and inbound["received"] > 0
    assert inbound["foreign"] + inbound["malformed"] > 0  # the RTCP did not take the port
    _, frames = read_wav(Path(event["path"]))
    offset = locate(frames[:, 0], reference)
    assert offset >= 0
    np.testing.assert_array_equal(frames[offset : offset + len(reference), 0], reference)
    assert not frames[:, 1].any()


async def _requests(fake, ccid: str, action: str) -> list:
    return fake.state.requests_for(ccid, action)


async def test_legacy_strep_wrapped_rtp_of_both_legs_on_one_port(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """The legacy single fork target: both legs to one port, each packet behind a 24-byte STREP
    header whose D bit says the leg (TELNYX.md); the simulator's fork sends them."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(2, 8), noise(2, 9))
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        result = await run_command(redis, "fork_start", ccid)
        rx = target_port(result["allocated"]["rx"])
        legs = [
            ForkLeg(
                "inbound",
                "127.0.0.1",
                rx,
                strep_header(call.call_leg_id, b_leg=False, transmitted=False),
            ),
            ForkLeg(
                "outbound",
                "127.0.0.1",
                rx,
                strep_header(call.call_leg_id, b_leg=False, transmitted=True),
            ),
        ]
        fork = RtpFork(audio, legs, "PCMU")
        task = asyncio.create_task(fork.run())
        await asyncio.sleep(1.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    for track in ("inbound", "outbound"):
        stats = event["legs"][track]
        assert (
            stats["received"] == fork.sent[track]
            and stats["lost"] == stats["malformed"] == stats["foreign"] == 0
        ), stats
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm, track in ((0, audio.inbound, "inbound"), (1, audio.outbound, "outbound")):
        reference = round_trip(pcm[: fork.sent[track] * 160])
        offset = locate(frames[:, channel], reference)
        assert offset >= 0, f"{track} is not on its channel"
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)


async def send_packets(
    payloads: dict[str, list[bytes]], ports: dict[str, int], payload_type: int, ticks: int
) -> None:
    """Paced RTP of two legs from one socket: one packet per leg every 20 ms, random SSRC,
    sequence and timestamp origins, ``ticks`` RTP clock ticks per packet."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    origins = {
        track: (secrets.randbits(32), secrets.randbits(16), secrets.randbits(32))
        for track in payloads
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for k in range(max(len(p) for p in payloads.values())):
            for track, packets in payloads.items():
                if k < len(packets):
                    ssrc, seq, ts = origins[track]
                    datagram = build_rtp(
                        packets[k],
                        payload_type=payload_type,
                        sequence=(seq + k) & 0xFFFF,
                        timestamp=(ts + k * ticks) & 0xFFFFFFFF,
                        ssrc=ssrc,
                        marker=k == 0,
                    )
                    sock.sendto(datagram, ("127.0.0.1", ports[track]))
            await asyncio.sleep(max(started + (k + 1) * 0.02 - loop.time(), 0))
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("codec", "ffmpeg", "rate", "ticks", "payload_type", "options"),
    [
        # G.722: RTP clock 8000 (RFC 3551), audio 16 kHz; recorded at 16 kHz: no resampling, so
        # the recording is PyAV's (FFmpeg's) own round trip of the source, sample for sample
        ("G722", "g722", 16000, 160, 9, {}),
        # Opus on a payload type only INGEST_DYNAMIC_PAYLOAD_TYPES names; recorded at 48 kHz:
        # exactly what libopus (through PyAV) decodes of the same packets
        ("OPUS", "libopus", 48000, 960, 111, {"bit_rate": 32000}),
    ],
)
async def test_wideband_codecs_over_udp_are_recorded_as_their_decoder_gives_them(
    codec: str,
    ffmpeg: str,
    rate: int,
    ticks: int,
    payload_type: int,
    options: dict[str, int],
    redis: Redis,
    redis_url: str,
    fake,
    tmp_path: Path,
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    frame = rate // 50
    payloads = {
        track: av_encode(ffmpeg, noise(1.5, seed, rate), rate, frame, **options)
        for track, seed in (("inbound", 81), ("outbound", 82))
    }
    settings = ingest_settings(
        tmp_path,
        redis_url,
        fake.url,
        ingest_recording_rate=rate,
        ingest_dynamic_payload_types="111=OPUS/48000/2",
    )
    async with running(settings):
        result = await run_command(redis, "fork_start", ccid)
        ports = {
            "inbound": target_port(result["allocated"]["rx"]),
            "outbound": target_port(result["allocated"]["tx"]),
        }
        await send_packets(payloads, ports, payload_type, ticks)
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    assert event["codec"] == codec and event["sample_rate"] == rate
    file_rate, frames = read_wav(Path(event["path"]))
    assert file_rate == rate
    for channel, track in ((0, "inbound"), (1, "outbound")):
        stats = event["legs"][track]
        assert (stats["codec"], stats["sample_rate"]) == (codec, rate)
        assert (
            stats["received"] == len(payloads[track])
            and stats["lost"] == stats["decode_errors"] == stats["unsupported"] == 0
        )
        reference = av_decode(ffmpeg, payloads[track], rate)
        assert len(reference) == len(payloads[track]) * frame
        # found by its second packet (a decoder's first output may start with silence)
        offset = locate(frames[:, channel], reference[frame:], frame) - frame
        assert offset >= 0
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)


async def test_an_unsupported_payload_type_is_one_error_per_leg_and_type_and_the_good_audio_is_recorded(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """Each PCMU packet is followed, in the same RTP stream, by four of payload types no decoder
    takes (G.729 and an unmapped dynamic type): 400 such packets make three error events."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(1.2, 83), noise(1.2, 84))
    junk = {"inbound": (18, 97, 18, 97), "outbound": (18, 18, 18, 18)}
    packets = 50
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        result = await run_command(redis, "fork_start", ccid)
        ports = {
            "inbound": target_port(result["allocated"]["rx"]),
            "outbound": target_port(result["allocated"]["tx"]),
        }
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            for k in range(packets):
                for track, types in junk.items():
                    ssrc, first = (0x3333, 1000) if track == "inbound" else (0x4444, 5000)
                    seq = first + k * (1 + len(types))
                    good = ulaw_encode(audio.frame(track, k))
                    sock.sendto(
                        build_rtp(good, payload_type=0, sequence=seq, timestamp=160 * k, ssrc=ssrc),
                        ("127.0.0.1", ports[track]),
                    )
                    for n, pt in enumerate(types, 1):
                        datagram = build_rtp(
                            b"\x5a" * 20,
                            payload_type=pt,
                            sequence=seq + n,
                            timestamp=160 * k,
                            ssrc=ssrc,
                        )
                        sock.sendto(datagram, ("127.0.0.1", ports[track]))
                await asyncio.sleep(max(started + (k + 1) * 0.02 - loop.time(), 0))
        finally:
            sock.close()
        await wait_for(
            lambda: at_least(topic_events(redis, MEDIA_ERROR), 3), 5, "the unsupported_codec events"
        )
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    errors = await topic_events(
        redis, MEDIA_ERROR
    )  # the instance has stopped: all it offered is published
    assert {(e["kind"], e["call_control_id"], e["leg"], e["payload_type"]) for e in errors} == {
        ("unsupported_codec", ccid, "inbound", 18),
        ("unsupported_codec", ccid, "inbound", 97),
        ("unsupported_codec", ccid, "outbound", 18),
    }
    assert len(errors) == 3, errors
    for error in errors:
        assert (
            error["detail"].startswith(f"{error['leg']} leg: unsupported RTP ")
            and f" {error['payload_type']}: " in error["detail"]
        )
        assert (
            "0 PCMU/8000, 8 PCMA/8000" in error["detail"]
            and "INGEST_DYNAMIC_PAYLOAD_TYPES" in error["detail"]
        )
        assert (
            error["id"] == f"error:unsupported_codec:{ccid}:{error['leg']}:{error['payload_type']}"
        )
    assert event["codec"] == "PCMU"
    _, frames = read_wav(Path(event["path"]))
    for channel, track in ((0, "inbound"), (1, "outbound")):
        stats = event["legs"][track]
        assert (stats["received"], stats["unsupported"], stats["lost"], stats["codec"]) == (
            packets * 5,
            packets * 4,
            0,
            "PCMU",
        ), stats
        reference = round_trip(getattr(audio, track)[: packets * 160])
        offset = locate(frames[:, channel], reference)
        assert offset >= 0, f"the {track} audio is not recorded"
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)
