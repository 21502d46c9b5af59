"""Restart in place: an ingest process with a stable name killed -9 mid-call and started again
picks its live calls up; the call ends with one recording, aligned to the wall clock, that holds
everything sent except the downtime (plus at most 1 s), and one completed event naming the gap."""

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from redis.asyncio import Redis

from media_ingest.keys import held_key, owner_key
from media_ingest.protocol.wav import read_wav
from media_ingest.transports.stream_endpoint import AUTH_HEADER
from telnyx_simulator.audio import CallAudio
from telnyx_simulator.rtp import ForkLeg, RtpFork
from tests.media_ingest.harness import (
    API_KEY,
    command_result,
    locate,
    noise,
    publish_command,
    publish_webhook,
    recording_completed,
    run_command,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip, send_fork
from tests.media_ingest.test_ports import free_range
from tests.media_ingest.test_streaming import start_frame, stream_audio
from voicetap_cli.embedded_redis import free_port
from voicetap_sdk import codec
from voicetap_sdk.topics import COMMAND_RESULTS, RECORDING_COMPLETED

pytestmark = pytest.mark.slow  # real-time media and real processes

FRAME = 160  # samples of one 20 ms packet at 8 kHz


def instance_env(
    tmp_path: Path, redis_url: str, fake_url: str, name: str, ports: range | None = None
) -> dict[str, str]:
    """``ports``: the instance's RTP range (instances started together need ranges of their own:
    a free range is only free until someone binds it)."""
    ports = ports or free_range(2)
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(tmp_path),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake_url}/v2",
        "INGEST_PORT": str(free_port()),
        "INGEST_HOST": "127.0.0.1",
        "INGEST_RTP_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "INGEST_RTP_PORTS": f"{ports.start}-{ports.stop - 1}",
        "INGEST_INSTANCE_ID": name,
        "INGEST_PORT_LEASE_SECONDS": "30",
        "INGEST_ANALYTICS_INTERVAL_SECONDS": "0.3",
        "LOG_LEVEL": "WARNING",
    }


@asynccontextmanager
async def ingest_process(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """A real ``media_ingest.main`` process, ready; stopped with SIGTERM at the end if alive."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_ingest.main", env=env
    )
    base = f"http://127.0.0.1:{env['INGEST_PORT']}"

    async def ready() -> bool:
        if process.returncode is not None:
            raise AssertionError(f"the ingest exited with {process.returncode}")
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{base}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await wait_for(ready, 30, "the ingest to be ready")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


def received_runs(channel: np.ndarray, reference: np.ndarray) -> list[tuple[int, int, int]]:
    """Where the sent audio lies in the recording: runs of exact 20 ms frames as
    ``(first frame sent, frames, offset in the recording)``, in order."""
    runs: list[tuple[int, int, int]] = []
    frame = 0
    total = len(reference) // FRAME
    while frame < total:
        offset = locate(channel, reference[frame * FRAME : (frame + 1) * FRAME])
        if offset < 0:
            frame += 1
            continue
        length = 1
        while (
            frame + length < total
            and offset + (length + 1) * FRAME <= len(channel)
            and np.array_equal(
                channel[offset + length * FRAME : offset + (length + 1) * FRAME],
                reference[(frame + length) * FRAME : (frame + length + 1) * FRAME],
            )
        ):
            length += 1
        runs.append((frame, length, offset))
        frame += length
    return runs


async def completed_events(redis: Redis, call_control_id: str) -> list[dict[str, Any]]:
    events = await topic_events(redis, RECORDING_COMPLETED)
    return [event for event in events if event["call_control_id"] == call_control_id]


async def test_a_forked_call_goes_on_in_the_same_recording_after_kill_9(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    env = instance_env(tmp_path, redis_url, fake.url, "ingest-restart")
    seconds = 12.0
    audio = CallAudio(noise(seconds + 1, 51), noise(seconds + 1, 52))
    loop = asyncio.get_running_loop()
    async with ingest_process(env) as first:
        started = await run_command(redis, "fork_start", ccid)
        rx, tx = target_port(started["allocated"]["rx"]), target_port(started["allocated"]["tx"])
        fork = RtpFork(
            audio, [ForkLeg("inbound", "127.0.0.1", rx), ForkLeg("outbound", "127.0.0.1", tx)]
        )
        sending = asyncio.create_task(fork.run())  # Telnyx goes on sending through the crash
        t0 = loop.time()
        await asyncio.sleep(3.5)
        killed_at = loop.time() - t0
        await kill(first)
    async with ingest_process(env):
        back_at = loop.time() - t0
        await asyncio.sleep(max(seconds - (loop.time() - t0), 1.0))
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        sent_frames = min(fork.sent.values())
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid, timeout=20)
        await asyncio.sleep(1.0)  # a second event would be there by now
        assert len(await completed_events(redis, ccid)) == 1
    # the same RTP streams go on: placed by their timestamps, sample-exact
    assert_one_recording_with_the_gap(event, audio, sent_frames, back_at - killed_at, 0)


def assert_one_recording_with_the_gap(
    event: dict[str, Any], audio: CallAudio, sent_frames: int, downtime: float, tolerance: int
) -> None:
    """Everything sent is in the file, sample-exact and where the wall clock puts it, except what
    was sent while no process held the call (at most the downtime plus 1 s), which is silence."""
    assert event["reason"] == "hangup" and not event["recovered"], event
    [gap] = event["gaps"]
    assert gap["reason"] == "worker_restart"
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        reference = round_trip(pcm)[: sent_frames * FRAME]
        runs = received_runs(frames[:, channel], reference)
        assert len(runs) == 2, runs  # before the kill, after the restart: nothing else
        (first_frame, before, at), (resumed_frame, after, later) = runs
        assert first_frame == 0 and resumed_frame + after == sent_frames, runs
        lost = (resumed_frame - before) * 0.02
        assert lost <= downtime + 1.0, (lost, downtime)
        # the two runs are where the call's clock puts them: a fork goes on with the same RTP
        # stream, placed by its timestamps (sample-exact); a new stream where it arrives
        assert abs((later - at) - resumed_frame * FRAME) <= tolerance, runs
        # the gap is silence (after the part of a packet the file ended in)
        assert not frames[at + (before + 1) * FRAME : later, channel].any()
        assert gap["start"] <= (at + (before + 1) * FRAME) / 8000
        assert abs(gap["end"] - later / 8000) <= 0.05, (gap, later / 8000)
    assert abs(event["duration"] - len(frames) / 8000) <= 0.001


async def test_a_streamed_call_asks_for_its_stream_again_after_kill_9(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    env = instance_env(tmp_path, redis_url, fake.url, "ingest-restart-stream")
    url = f"ws://127.0.0.1:{env['INGEST_PORT']}/streams/telnyx"
    audio = CallAudio(noise(13, 61), noise(13, 62))
    loop = asyncio.get_running_loop()

    async def stream(token: str, stream_id: str, first_frame: int, chunks: int) -> None:
        async with websockets.connect(url, additional_headers={AUTH_HEADER: token}) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
            await ws.send(codec.dumps(start_frame(ccid, stream_id)).decode())
            await stream_audio(ws, audio, first_frame, chunks, stream_id)

    async with ingest_process(env) as first:
        assert (await run_command(redis, "streaming_start", ccid))["ok"]
        [request] = fake.state.requests_for(ccid, "streaming_start")
        t0 = loop.time()
        streaming = asyncio.create_task(
            stream(request.body["stream_auth_token"], "stream-1", 0, 600)
        )
        await asyncio.sleep(3.5)
        killed_at = loop.time() - t0
        await kill(first)
        await asyncio.gather(streaming, return_exceptions=True)  # the socket died with it
    async with ingest_process(env):
        back_at = loop.time() - t0
        asked = await wait_for(
            lambda: _again(fake.state.requests_for(ccid, "streaming_start")),
            10,
            "streaming_start asked for again",
        )
        resumed_frame = round((loop.time() - t0) / 0.02)
        sent_frames = 600
        await stream(
            asked.body["stream_auth_token"], "stream-2", resumed_frame, sent_frames - resumed_frame
        )
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid, timeout=20)
        await asyncio.sleep(1.0)
        assert len(await completed_events(redis, ccid)) == 1
    assert event["media"] == ["stream"]
    # a new stream is placed where its first frames arrive
    assert_one_recording_with_the_gap(
        event, audio, sent_frames, back_at - killed_at, round(0.1 * 8000)
    )


async def _again(requests: list[Any]) -> Any:
    return requests[1] if len(requests) > 1 else None


class Gate:
    """Holds the fake API's first request of ``action`` once armed, until released: a command
    in flight when its process is killed."""

    def __init__(self, app: Any, action: str) -> None:
        self.app, self.action = app, action
        self.armed = False
        self.entered, self.released = asyncio.Event(), asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.armed
            and scope["type"] == "http"
            and scope["path"].endswith(f"/actions/{self.action}")
        ):
            self.armed = False
            self.entered.set()
            await self.released.wait()
        await self.app(scope, receive, send)


async def metric(env: dict[str, str], line: str) -> bool:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{env['INGEST_PORT']}/metrics")).text
    return line in text


async def test_killed_while_paused_then_with_a_command_in_flight_nothing_doubles(
    redis: Redis, redis_url: str, fake, fake_server, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    env = instance_env(tmp_path, redis_url, fake.url, "ingest-edge", free_range(4))
    audio = CallAudio(noise(30, 81), noise(30, 82))
    sidecar = tmp_path / "spool" / f"{ccid}.json"

    async def paused_saved() -> bool:
        try:
            facts = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            return False
        return facts["live"] is None and facts["paused"] and facts["paused"][-1][1] is None

    async with ingest_process(env) as first:
        started = await run_command(redis, "fork_start", ccid)
        await send_fork(
            audio,
            target_port(started["allocated"]["rx"]),
            target_port(started["allocated"]["tx"]),
            1.5,
        )
        assert (await run_command(redis, "fork_stop", ccid))["ok"]  # paused (a PCI pause, say)
        await wait_for(paused_saved, 5, "the pause saved")
        await kill(first)
    swappable, _ = fake_server
    gate = Gate(swappable.app, "fork_start")
    swappable.app = gate
    async with ingest_process(env) as second:
        assert len(fake.state.requests_for(ccid, "fork_start")) == 1  # a paused call stays paused
        assert await redis.get(owner_key(ccid)) == b"ingest-edge"
        gate.armed = True
        resume_id = await publish_command(
            redis, {"id": "resume-1", "action": "fork_start", "call_control_id": ccid}
        )
        await asyncio.wait_for(gate.entered.wait(), 10)  # the request is at Telnyx: kill now
        await kill(second)
        gate.released.set()
    async with ingest_process(env):
        result = await command_result(redis, resume_id, timeout=15)
        assert result["ok"], result
        await asyncio.sleep(1.0)
        answers = [
            r for r in await topic_events(redis, COMMAND_RESULTS) if r["command_id"] == resume_id
        ]
        assert len(answers) == 1  # executed again after the kill, answered once
        rx, tx = target_port(result["allocated"]["rx"]), target_port(result["allocated"]["tx"])
        assert fake.state.requests_for(ccid, "fork_start")[-1].body["rx"] == f"udp:127.0.0.1:{rx}"
        last = await send_fork(audio, rx, tx, 1.5, start_frame=500)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid, timeout=20)
        await asyncio.sleep(1.0)
        assert len(await completed_events(redis, ccid)) == 1
        assert await metric(env, "voicetap_ingest_active_calls 0.0")  # no zombie call
    assert event["reason"] == "hangup" and event["paused"] and event["gaps"], (
        event["paused"],
        event["gaps"],
        event["duration"],
        event["media"],
    )
    assert {gap["reason"] for gap in event["gaps"]} == {"worker_restart"}
    _, frames = read_wav(Path(event["path"]))
    reference = round_trip(audio.inbound)
    sent = reference[500 * FRAME : (500 + last.sent["inbound"]) * FRAME]
    assert locate(frames[:, 0], sent[:FRAME]) >= 0  # the audio after the resume is there
    assert await redis.get(owner_key(ccid)) is None and not await redis.hlen(
        held_key("ingest-edge")
    )


async def test_killed_right_after_hang_up_the_call_ends_once(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    env = instance_env(tmp_path, redis_url, fake.url, "ingest-hungup")
    audio = CallAudio(noise(3, 91), noise(3, 92))
    async with ingest_process(env) as first:
        started = await run_command(redis, "fork_start", ccid)
        await send_fork(
            audio,
            target_port(started["allocated"]["rx"]),
            target_port(started["allocated"]["tx"]),
            1.0,
        )
        await publish_webhook(redis, "call.hangup", ccid)
        await recording_completed(redis, ccid, timeout=20)
        await kill(first)
    async with ingest_process(env):
        await asyncio.sleep(2.0)
        assert len(await completed_events(redis, ccid)) == 1
        assert await metric(env, "voicetap_ingest_active_calls 0.0")
        assert len(fake.state.requests_for(ccid, "fork_start")) == 1  # nothing restarted
    assert not [p for p in (tmp_path / "spool").iterdir() if ccid.split(":")[-1] in p.name]
