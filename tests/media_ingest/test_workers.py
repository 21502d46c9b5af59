"""``voicetap ingest --workers 2`` as a real process tree: a supervisor and two workers on one
shared HTTP port, forks on both port shares, a media stream relayed to the worker holding its call,
a worker killed -9 and restarted with its name, SIGTERM finishing every call."""

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from media_ingest.keys import INSTANCE_PREFIX
from media_ingest.protocol.wav import read_wav
from telnyx_simulator.audio import CallAudio
from tests.media_ingest.harness import (
    API_KEY,
    locate,
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip, send_fork
from tests.media_ingest.test_ports import free_range
from tests.media_ingest.test_streaming import AUTH, start_frame, stop_stream, stream_audio
from voicetap_cli.embedded_redis import free_port
from voicetap_sdk import codec
from voicetap_sdk.topics import RECORDING_COMPLETED

VOICETAP = Path(sys.executable).parent / "voicetap"


@dataclass
class Host:
    process: asyncio.subprocess.Process
    name: str
    url: str  # the shared INGEST_PORT
    rtp: range
    private: dict[str, int]  # worker -> its private port, as the host's /readyz names them

    def workers(self) -> dict[str, int]:
        """Worker name -> pid, read from /proc (the supervisor's children)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = {}
        for child in children:
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except ProcessLookupError:  # killed and not reaped yet
                continue
            for variable in environ:
                if variable.startswith(b"INGEST_INSTANCE_ID="):
                    found[variable.split(b"=", 1)[1].decode()] = int(child)
        return found

    def share(self, worker: str) -> range:
        half = len(self.rtp) // 2
        return self.rtp[:half] if worker.endswith("-w0") else self.rtp[half:]


async def _readyz(url: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient() as http:
            return await http.get(url, timeout=3)
    except httpx.HTTPError:
        return None


@contextlib.asynccontextmanager
async def ingest_host(redis_url: str, fake_url: str, tmp_path: Path) -> AsyncIterator[Host]:
    """``voicetap ingest --workers 2``, ready on every worker; SIGTERM at the end unless the test
    stopped it."""
    name = f"host-{uuid.uuid4().hex[:6]}"
    rtp, port = free_range(8), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(tmp_path),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake_url}/v2",
        "INGEST_HOST": "127.0.0.1",
        "INGEST_PORT": str(port),
        "INGEST_PUBLIC_URL": f"ws://127.0.0.1:{port}",
        "INGEST_RTP_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "INGEST_RTP_PORTS": f"{rtp.start}-{rtp.stop - 1}",
        "INGEST_INSTANCE_ID": name,
        "INGEST_PORT_LEASE_SECONDS": "6",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("INGEST_WORKERS", None)
    process = await asyncio.create_subprocess_exec(
        str(VOICETAP), "ingest", "--workers", "2", env=env
    )
    url = f"http://127.0.0.1:{port}"
    private: dict[str, int] = {}

    async def every_worker_seen() -> bool:
        """Ready, and both workers have answered /readyz (each names the other's private port)."""
        answer = await _readyz(f"{url}/readyz")
        if answer is None or answer.status_code != 200:
            return False
        for check in answer.json()["checks"]:
            if found := re.fullmatch(r"(\S+) \(127\.0\.0\.1:(\d+)\)", check):
                private[found[1]] = int(found[2])
        return len(private) == 2

    try:
        await wait_for(every_worker_seen, 40, "both workers ready on the shared port")
        assert sorted(private) == [f"{name}-w0", f"{name}-w1"]
        yield Host(process, name, url, rtp, private)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.mark.slow  # real-time media
async def test_forks_land_on_both_workers_and_the_shared_port_serves_every_recording_and_sigterm_finishes_every_call(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    async with ingest_host(redis_url, fake.url, tmp_path) as host:
        assert set(host.workers()) == set(host.private)
        calls: dict[str, dict] = {}  # ccid -> fork_start result
        while len({r["executed_by"] for r in calls.values()}) < 2:
            assert len(calls) < 6, "every fork went to one worker"
            ccid = fake.state.create_call().call_control_id
            calls[ccid] = await run_command(redis, "fork_start", ccid)
            assert calls[ccid]["ok"], calls[ccid]
        for result in calls.values():  # each on its own worker's share of the range
            worker = result["executed_by"].removeprefix("media_ingest:")
            assert target_port(result["allocated"]["rx"]) in host.share(worker), result
        audio = {ccid: CallAudio(noise(2, n), noise(2, 50 + n)) for n, ccid in enumerate(calls)}
        ports = {
            ccid: (target_port(r["allocated"]["rx"]), target_port(r["allocated"]["tx"]))
            for ccid, r in calls.items()
        }
        await asyncio.gather(*(send_fork(audio[c], *ports[c], 1.5) for c in calls))
        async with httpx.AsyncClient(base_url=host.url) as http:
            for ccid in calls:  # each request lands on either worker: all are served
                for _ in range(4):
                    live = await http.get(f"/calls/{ccid}/recording.wav")
                    assert live.status_code == 200 and len(live.content) > 44, ccid
            for _ in range(4):  # whichever worker a scrape lands on, it shows the whole host
                families = {f.name: f for f in parse((await http.get("/metrics")).text)}
                up = {
                    s.labels["worker"]: s.value
                    for s in families["voicetap_ingest_worker_up"].samples
                }
                assert up == {worker: 1.0 for worker in host.private}, up
                active = families["voicetap_ingest_active_calls"].samples
                assert {s.labels["worker"] for s in active} == set(host.private)
                assert sum(s.value for s in active) == len(calls)
        ended, live_calls = list(calls)[:-1], list(calls)[-1:]
        for ccid in ended:
            await publish_webhook(redis, "call.hangup", ccid)
        for ccid in ended:
            event = await recording_completed(redis, ccid)
            assert event["instance"] == calls[ccid]["executed_by"].removeprefix("media_ingest:")
            assert event["legs"]["inbound"]["received"] > 50
        async with httpx.AsyncClient(base_url=host.url) as http:
            for ccid in ended:
                for _ in range(4):
                    stored = await http.get(f"/calls/{ccid}/recording.wav")
                    assert stored.status_code == 200, ccid
                    assert stored.headers["x-voicetap-recording"] == "complete"
        workers = host.workers()
        host.process.send_signal(signal.SIGTERM)  # with a call still live on its worker
        assert await asyncio.wait_for(host.process.wait(), 60) == 0
    for pid in workers.values():
        assert not Path(f"/proc/{pid}").exists(), "a worker outlived its supervisor"
    for ccid in live_calls:
        assert (await recording_completed(redis, ccid))["reason"] == "shutdown"
    await asyncio.sleep(1)
    completed = [e["call_control_id"] for e in await topic_events(redis, RECORDING_COMPLETED)]
    assert sorted(completed) == sorted(calls), "every call completed, each once"


@pytest.mark.slow  # real-time media
async def test_a_stream_landing_on_the_other_worker_is_recorded_whole_by_the_holder(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    ccid = fake.state.create_call().call_control_id
    audio = CallAudio(noise(2, 61), noise(2, 62))
    async with ingest_host(redis_url, fake.url, tmp_path) as host:
        started = await run_command(redis, "streaming_start", ccid)
        assert started["ok"], started
        holder = started["executed_by"].removeprefix("media_ingest:")
        token = fake.state.requests_for(ccid, "streaming_start")[-1].body["stream_auth_token"]
        [elsewhere] = [worker for worker in host.private if worker != holder]
        landing = f"ws://127.0.0.1:{host.private[elsewhere]}/streams/telnyx"
        async with connect(landing, additional_headers={AUTH: token}) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await stream_audio(ws, audio, 0, 75)
            await stop_stream(ws, ccid)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        assert event["instance"] == holder and event["media"] == ["stream"]
        await asyncio.sleep(1)
        assert [e["call_control_id"] for e in await topic_events(redis, RECORDING_COMPLETED)] == [
            ccid
        ], "one recording: the worker it landed on took no call of its own"
        rate, frames = read_wav(Path(event["path"]))
        for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
            sent = round_trip(pcm)[: 75 * 160]
            at = locate(frames[:, channel], sent)
            assert at >= 0
            np.testing.assert_array_equal(frames[at : at + len(sent), channel], sent)

        # a wrong token is refused by the holder, and the refusal reaches the client
        async with connect(landing, additional_headers={AUTH: "wrong"}) as ws:
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await ws.wait_closed()
        assert ws.close_code == 1008


@pytest.mark.slow  # real-time media
async def test_a_worker_killed_9_is_restarted_with_its_name_and_the_host_gets_ready_again(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    async with ingest_host(redis_url, fake.url, tmp_path) as host:
        victim = f"{host.name}-w1"
        before = host.workers()
        os.kill(before[victim], signal.SIGKILL)

        async def replaced() -> bool:
            now = host.workers()
            return victim in now and now[victim] != before[victim]

        await wait_for(replaced, 20, "the killed worker to be restarted")
        own = f"http://127.0.0.1:{host.private[victim]}/readyz?worker"

        async def ready(url: str) -> bool:
            answer = await _readyz(url)
            return answer is not None and answer.status_code == 200

        await wait_for(lambda: ready(own), 30, "the restarted worker's own /readyz")
        await wait_for(lambda: ready(f"{host.url}/readyz"), 10, "the host's /readyz")
        assert host.workers()[f"{host.name}-w0"] == before[f"{host.name}-w0"]  # untouched
        assert await redis.exists(INSTANCE_PREFIX + victim)  # back in Redis under its name
        assert host.process.returncode is None


def _run_ingest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VOICETAP), "ingest", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_range_too_small_for_the_workers_is_refused_in_one_line(tmp_path: Path) -> None:
    done = _run_ingest(
        {
            "VOICETAP_DATA_DIR": str(tmp_path),
            "INGEST_HOST": "127.0.0.1",
            "INGEST_RTP_PORTS": "40000-40003",
        },
        "--workers",
        "3",
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "voicetap ingest: INGEST_RTP_PORTS=40000-40003 holds 2 port pair(s) (an even port and the "
        "next), too few for 3 workers (INGEST_WORKERS): each needs at least one; widen the range "
        "or run fewer workers"
    )


def test_a_worker_that_cannot_start_stops_the_host_with_its_own_last_line(
    redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    rtp = free_range(2)
    done = _run_ingest(
        {
            "REDIS_URL": redis_url,
            "VOICETAP_DATA_DIR": str(tmp_path / "a-file" / "data"),
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(free_port()),
            "INGEST_RTP_PORTS": f"{rtp.start}-{rtp.stop - 1}",
            "INGEST_WORKERS": "2",
        }
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"voicetap ingest: \S+-w[01] cannot start \(exit code 1\): voicetap ingest: "
        r"VOICETAP_RECORDINGS_URL cannot be used: .*",
        last,
    ), last
