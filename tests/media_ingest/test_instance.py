"""A real ``media_ingest.main`` process: probes, metrics, recordings over HTTP, and SIGKILL mid-call."""

import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from redis.asyncio import Redis

from media_ingest.calls.registry import SIDECAR_SECONDS
from media_ingest.keys import owner_key
from media_ingest.ports import LEASE_PREFIX
from media_ingest.protocol.wav import read_wav
from media_ingest.recording.files import spool_path
from telnyx_simulator.audio import CallAudio
from tests.media_ingest.harness import (
    API_KEY,
    ingest_settings,
    locate,
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    target_port,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip, send_fork
from tests.media_ingest.test_ports import free_range
from voicetap_cli.embedded_redis import free_port

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it


async def test_probes_metrics_and_the_recording_while_it_is_written(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(3, 31), noise(3, 32))
    async with (
        running(ingest_settings(tmp_path, redis_url, fake.url)) as (_, url),
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {
            "ready": True,
            "checks": {"redis": True, "recordings_spool": True},
        }
        assert (await http.get("/calls/v3:unknown/recording.wav")).status_code == 404
        started = await run_command(redis, "fork_start", ccid)
        sender = asyncio.create_task(
            send_fork(
                audio,
                target_port(started["allocated"]["rx"]),
                target_port(started["allocated"]["tx"]),
                2.5,
            )
        )
        await asyncio.sleep(2.0)
        live = await http.get(f"/calls/{ccid}/recording.wav")
        assert live.status_code == 200 and live.headers["x-voicetap-recording"] == "in-progress"
        live_path = tmp_path / "live.wav"
        live_path.write_bytes(live.content)
        rate, frames = read_wav(live_path)  # a valid WAV while the call goes on
        assert rate == 8000 and len(frames) > 0 and len(live.content) == 44 + 4 * len(frames)
        metrics = (await http.get("/metrics")).text
        for name in (
            "voicetap_ingest_active_calls 1.0",
            'voicetap_ingest_packets_total{leg="inbound"}',
            "voicetap_ingest_packets_per_second",
            'voicetap_ingest_packets_lost_total{leg="inbound"} 0.0',
            'voicetap_ingest_jitter_seconds{stat="max"}',
            "voicetap_ingest_decode_errors_total",
            "voicetap_ingest_foreign_packets_total",
            "voicetap_ingest_port_pairs_in_use 1.0",
        ):
            assert name in metrics, name
        await sender
        await publish_webhook(redis, "call.hangup", ccid)
        await recording_completed(redis, ccid)
        done = await http.get(f"/calls/{ccid}/recording.wav")
        assert done.headers["x-voicetap-recording"] == "complete" and len(done.content) > len(
            live.content
        )
        assert "voicetap_ingest_active_calls 0.0" in (await http.get("/metrics")).text


async def test_an_instance_killed_mid_call_leaves_a_valid_recording_and_its_ports_come_back(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """Killed after a pause and a resume: the repaired recording is announced with the codec, the
    statistics, the pause and the media kinds its sidecar saved while the call went on."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    ports = free_range(
        1
    )  # one pair: the next call can only get it if the dead instance's lease is freed
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(tmp_path),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake.url}/v2",
        "INGEST_PORT": str(free_port()),
        "INGEST_HOST": "127.0.0.1",
        "INGEST_RTP_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "INGEST_RTP_PORTS": f"{ports.start}-{ports.stop - 1}",
        "INGEST_INSTANCE_ID": "ingest-crashy",
        "INGEST_PORT_LEASE_SECONDS": "60",
        "INGEST_ANALYTICS_INTERVAL_SECONDS": "0.3",
        "LOG_LEVEL": "WARNING",
    }
    base = f"http://127.0.0.1:{env['INGEST_PORT']}"

    async def start() -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media_ingest.main", env=env
        )

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{base}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(ready, 30, "the instance to be ready")
        return process

    wav = spool_path(tmp_path, ccid)
    audio = CallAudio(noise(6, 41), noise(6, 42))
    loop = asyncio.get_running_loop()
    process = await start()
    try:
        started = await run_command(redis, "fork_start", ccid)
        assert started["executed_by"] == "media_ingest:ingest-crashy"
        t0 = loop.time()
        fork1 = await send_fork(
            audio,
            target_port(started["allocated"]["rx"]),
            target_port(started["allocated"]["tx"]),
            1.5,
        )
        assert (await run_command(redis, "fork_stop", ccid))["ok"]
        await asyncio.sleep(1.0)
        resumed = await run_command(redis, "fork_start", ccid)
        rx, tx = target_port(resumed["allocated"]["rx"]), target_port(resumed["allocated"]["tx"])
        resume_frame = round((loop.time() - t0) / 0.02)
        fork2 = await send_fork(audio, rx, tx, 1.5, resume_frame)
        sent = {track: fork1.sent[track] + fork2.sent[track] for track in ("inbound", "outbound")}

        async def saved_statistics() -> bool:  # the periodic save after the last packet
            try:
                legs = json.loads(wav.with_suffix(".json").read_text())["legs"]
            except ValueError:  # read while it was being written
                return False
            return all(legs[track]["received"] == sent[track] for track in sent)

        await wait_for(saved_statistics, SIDECAR_SECONDS + 5, "the sidecar to have every packet")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lease = f"{LEASE_PREFIX}127.0.0.1:{rx}"
    assert (
        await redis.get(lease) == f"ingest-crashy|{ccid}".encode()
    )  # still held by the dead process
    assert wav.exists() and wav.with_suffix(".json").exists()

    # Its holder key ran out while it was down (restarted in time, it would pick the call up again,
    # test_restart_in_place): the same instance comes back, repairs, announces, frees its ports.
    await redis.delete(owner_key(ccid))
    process = await start()
    try:
        event = await recording_completed(redis, ccid, timeout=20)
        assert (
            event["recovered"] is True
            and event["reason"] == "recovered"
            and event["duration"] > 1.0
        )
        assert event["codec"] == "PCMU" and event["media"] == ["fork"]
        for track in ("inbound", "outbound"):
            stats = event["legs"][track]
            assert (stats["received"], stats["lost"], stats["codec"]) == (sent[track], 0, "PCMU"), (
                stats
            )
        assert await redis.get(lease) is None
        assert not wav.with_suffix(".json").exists() and not wav.with_suffix(".json.tmp").exists()
        assert not wav.exists()  # stored (the default store: VOICETAP_DATA_DIR/recordings)
        stored = tmp_path / "recordings" / wav.name
        assert event["storage_url"] == f"file://{stored.resolve()}" and event["path"] == str(
            stored.resolve()
        )
        assert event["bytes"] == stored.stat().st_size
        assert event["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
        rate, frames = read_wav(stored)
        assert rate == 8000 and abs(len(frames) / 8000 - event["duration"]) <= 0.001
        [[pause_start, pause_end]] = event["paused"]
        for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
            track = "inbound" if channel == 0 else "outbound"
            reference = round_trip(pcm)
            one = reference[: fork1.sent[track] * 160]
            two = reference[resume_frame * 160 : (resume_frame + fork2.sent[track]) * 160]
            o1, o2 = locate(frames[:, channel], one), locate(frames[:, channel], two)
            assert o1 >= 0 and o2 >= 0, (o1, o2)
            np.testing.assert_array_equal(
                frames[o1 : o1 + len(one), channel], one
            )  # what was written is exact
            np.testing.assert_array_equal(frames[o2 : o2 + len(two), channel], two)
            gap_start, gap_end = o1 + len(one), o2
            assert not frames[gap_start:gap_end, channel].any()
            assert gap_start / 8000 - 0.05 <= pause_start and pause_end <= gap_end / 8000 + 0.05
        assert pause_end - pause_start >= 0.8
        # the freed pair serves the next call at once
        again = fake.state.create_call()
        reused = await run_command(redis, "fork_start", again.call_control_id)
        assert reused["ok"] and target_port(reused["allocated"]["rx"]) == rx
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
    # a clean stop completes every call it held
    assert (await recording_completed(redis, again.call_control_id))["reason"] == "shutdown"


async def test_an_instance_pings_idle_streams_and_prints_no_deprecation_warning(
    redis_url: str, fake, tmp_path: Path
) -> None:
    """``voicetap ingest`` as production runs it, with every warning shown (``-W default``): an
    idle media-stream WebSocket gets keep-alive pings every ``INGEST_WS_PING_SECONDS``, and the
    server (WebSocket implementation included) and its shutdown print no ``DeprecationWarning``."""
    ports = free_range(1)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(tmp_path),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake.url}/v2",
        "INGEST_PORT": str(free_port()),
        "INGEST_HOST": "127.0.0.1",
        "INGEST_RTP_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "INGEST_RTP_PORTS": f"{ports.start}-{ports.stop - 1}",
        "INGEST_INSTANCE_ID": "ingest-warnings",
        "INGEST_WS_PING_SECONDS": "0.3",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "default", "-m", "media_ingest.main", env=env,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as http:
                url = f"http://127.0.0.1:{env['INGEST_PORT']}/readyz"
                return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await wait_for(ready, 30, "the instance to be ready")
        port = int(env["INGEST_PORT"])
        # answered, pings go on; unanswered, the socket is closed after the ping timeout
        assert await first_frames(port, "/streams/telnyx", 3, answer=True) == [0x9, 0x9, 0x9]
        assert await first_frames(port, "/streams/telnyx", 2, answer=False) == [0x9, 0x8]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    output = (stdout + stderr).decode()
    assert process.returncode == 0, output
    assert "DeprecationWarning" not in output and "Traceback" not in output, output


async def first_frames(
    port: int, path: str, count: int, *, answer: bool, timeout: float = 3.0
) -> list[int]:
    """Opcodes of the first ``count`` frames the server sends on a WebSocket that says nothing
    but, with ``answer``, pongs (an RFC 6455 client by hand: a library would answer unseen)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        assert head.startswith(b"HTTP/1.1 101"), head
        opcodes = []
        for _ in range(count):
            first, second = await asyncio.wait_for(reader.readexactly(2), timeout)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(size)
            opcodes.append(first & 0x0F)
            if answer and first & 0x0F == 0x9:  # a pong, masked (with a zero key) as a client must
                writer.write(bytes([0x8A, 0x80 | len(payload)]) + bytes(4) + payload)
        return opcodes
    finally:
        writer.close()
