"""`voicetap simulate` as a user runs it: calls against a real gateway and Redis, the checks of its
summary (passing, skipped, failing), a stack of its own (`--start-stack`), and `voicetap up --demo`
from start to Ctrl-C."""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import telnyx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from telnyx_simulator.checks import wav_seconds
from telnyx_simulator.main import main
from telnyx_simulator.script import ScriptLine, parse_script
from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from voicetap_cli.embedded_redis import free_port
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings

from .stand_in_ingest import StandInIngest

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
API_KEY = "KEYsimulate_test"
LIFECYCLE = ("telnyx.call.initiated", "telnyx.call.answered", "telnyx.call.hangup")


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner.generate()


@pytest.fixture
def keys_file(tmp_path: Path, signer: WebhookSigner) -> Path:
    """A development keys file as `voicetap up` writes it."""
    path = tmp_path / "dev-webhook-keys.json"
    path.write_text(
        json.dumps(
            {"private_key": signer.private_key, "public_key": signer.public_key, "api_key": API_KEY}
        )
    )
    return path


@pytest.fixture
async def gateway_url(
    redis: Redis, redis_url: str, signer: WebhookSigner, tmp_path: Path
) -> AsyncIterator[str]:
    settings = GatewaySettings(
        redis_url=redis_url, telnyx_public_key=signer.public_key, voicetap_data_dir=tmp_path
    )
    async with serve(build_app(settings)) as url:
        yield url


def nothing_at() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``main(args)`` in a thread (it runs its own event loop; the test's serves the gateway)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    return code, capsys.readouterr().out


def common_args(gateway_url: str, redis_url: str, keys_file: Path) -> list[str]:
    return [
        "--gateway-url", gateway_url, "--redis-url", redis_url, "--signing-key", str(keys_file),
        "--api-port", "0", "--ingest-url", nothing_at(), "--indexer-url", nothing_at(), "--wait", "2", "--settle", "3",
    ]  # fmt: skip


def checks_of(summary: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in summary["checks"]}


async def test_calls_through_the_gateway_end_on_their_topics_and_the_summary_passes(
    capsys: pytest.CaptureFixture[str],
    redis: Redis,
    redis_url: str,
    gateway_url: str,
    keys_file: Path,
) -> None:
    code, out = await simulate(
        capsys, *common_args(gateway_url, redis_url, keys_file),
        "--calls", "3", "--duration", "2.5", "--redeliver-probability", "0.5", "--json",
    )  # fmt: skip
    summary = json.loads(out)
    assert code == 0 and summary["ok"], out
    assert checks_of(summary) == {
        "gateway": "pass", "webhooks": "pass", "topics": "pass", "recordings": "skip", "transcripts": "skip",
    }  # fmt: skip
    skipped = {c["name"]: c["detail"] for c in summary["checks"] if c["status"] == "skip"}
    assert "media_ingest is not running" in skipped["recordings"]
    assert "transcript_indexer is not running" in skipped["transcripts"]
    calls = summary["calls"]
    assert len(calls) == 3 and len({c["call_control_id"] for c in calls}) == 3
    for call in calls:
        # The sample's first line ends at 2.04 s: each 2.5 s call sends it as a final transcription.
        assert call["events"] == {
            "call.initiated": 1,
            "call.answered": 1,
            "call.transcription": 1,
            "call.hangup": 1,
        }
        assert call["topics"] == {t: 1 for t in (*LIFECYCLE, "telnyx.call.transcription")}
    # What a user reads in Redis: each call once on each lifecycle topic, re-deliveries de-duplicated.
    for topic in LIFECYCLE:
        ids = [fields[b"call_control_id"].decode() for _, fields in await redis.xrange(topic)]
        assert sorted(ids) == sorted(c["call_control_id"] for c in calls), topic


async def test_a_required_service_that_is_not_running_fails_the_run_and_says_why(
    capsys: pytest.CaptureFixture[str],
    redis: Redis,
    redis_url: str,
    gateway_url: str,
    keys_file: Path,
) -> None:
    args = common_args(gateway_url, redis_url, keys_file)
    ingest = args[args.index("--ingest-url") + 1]
    code, out = await simulate(capsys, *args, "--require", "ingest", "--wait", "0.5")
    assert code == 1
    assert "FAIL  ingest" in out and f"not running at {ingest} (required): no answer" in out, out
    assert "result: FAIL" in out
    assert await redis.xlen("telnyx.call.initiated") == 0, (
        "no call is played against an incomplete stack"
    )


async def test_the_demo_requires_every_installed_service(
    capsys: pytest.CaptureFixture[str],
    redis: Redis,
    redis_url: str,
    gateway_url: str,
    keys_file: Path,
) -> None:
    """The demo shows the whole pipeline: a service that is installed but not running fails it
    instead of being skipped."""
    code, out = await simulate(
        capsys, *common_args(gateway_url, redis_url, keys_file), "--demo", "--wait", "0.5"
    )
    assert code == 1, out
    assert "FAIL  ingest" in out and "FAIL  indexer" in out and "(required)" in out, out
    assert "FAIL  console" in out, out
    assert "SKIP" not in out and "result: FAIL (3 checks failed)" in out, out


async def test_an_ingest_that_asks_for_no_media_fails_the_recordings_check(
    capsys: pytest.CaptureFixture[str], redis_url: str, gateway_url: str, keys_file: Path
) -> None:
    silent = Starlette(routes=[Route("/readyz", lambda _: JSONResponse({"status": "ready"}))])
    async with serve(silent) as ingest_url:
        code, out = await simulate(
            capsys, *common_args(gateway_url, redis_url, keys_file),
            "--ingest-url", ingest_url, "--duration", "1", "--settle", "0.5",
        )  # fmt: skip
    assert code == 1, out
    assert "FAIL  media" in out and "media_ingest asked for no media" in out
    assert "FAIL  recordings" in out and "PASS  topics" in out


@pytest.mark.parametrize("short_by", [0.0, 1.5], ids=["full-length", "too-short"])
async def test_recordings_are_checked_against_the_audio_sent(
    capsys: pytest.CaptureFixture[str],
    redis: Redis,
    redis_url: str,
    gateway_url: str,
    keys_file: Path,
    short_by: float,
) -> None:
    api_port = free_port()
    sdk = telnyx.AsyncTelnyx(
        api_key=API_KEY, base_url=f"http://127.0.0.1:{api_port}/v2", max_retries=3
    )
    sdk.calls.actions  # noqa: B018 - the SDK imports its resources lazily (over 1 s), not mid-call
    ingest = StandInIngest(Redis.from_url(redis_url), sdk, short_by=short_by)
    async with ingest.running() as ingest_url:
        args = common_args(gateway_url, redis_url, keys_file)
        args[args.index("--api-port") + 1] = str(api_port)
        code, out = await simulate(
            capsys, *args, "--ingest-url", ingest_url, "--calls", "2", "--duration", "2.5", "--codec", "PCMA", "--json"
        )  # fmt: skip
    await ingest.redis.aclose()
    await sdk.close()
    summary = json.loads(out)
    statuses = checks_of(summary)
    assert statuses["media"] == "pass", out
    for call in summary["calls"]:
        assert call["media"] == ["fork_start"] and 2.0 < call["media_seconds"] <= 2.5
    if short_by:
        assert code == 1 and statuses["recordings"] == "fail"
        problems = next(c["problems"] for c in summary["checks"] if c["name"] == "recordings")
        assert len(problems) == 2 and all("the recording lasts" in p for p in problems)
    else:
        assert code == 0 and statuses["recordings"] == "pass", out
        for call in summary["calls"]:
            assert abs(call["recording_seconds"] - call["media_seconds"]) < 0.1


async def test_against_a_stack_that_is_not_running_no_call_is_played(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    redis: Redis,
    redis_url: str,
    keys_file: Path,
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # `voicetap` not on PATH: hints say dev.py
    gateway = nothing_at()
    code, out = await simulate(capsys, *common_args(gateway, redis_url, keys_file), "--wait", "0.5")
    assert code == 1, out
    assert "calls: no call was played" in out.splitlines(), out
    assert (
        f"FAIL  gateway  not running at {gateway} (every call goes through it): no answer "
        "(connection refused); "
        "start the stack with `python3 dev.py up`, or pass --start-stack"
    ) in out, out
    assert await redis.xlen("telnyx.call.initiated") == 0


async def test_the_summary_lists_the_ids_of_the_calls_played(
    capsys: pytest.CaptureFixture[str],
    redis: Redis,
    redis_url: str,
    gateway_url: str,
    keys_file: Path,
) -> None:
    code, out = await simulate(
        capsys, *common_args(gateway_url, redis_url, keys_file), "--calls", "2", "--duration", "1"
    )
    assert code == 0, out
    lines = out.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("calls (ids for `"))
    listed = [line.strip() for line in lines[heading + 1 : heading + 3]]
    assert all(re.fullmatch(r"v3:\S+", cid) for cid in listed), out
    answered = [
        f[b"call_control_id"].decode() for _, f in await redis.xrange("telnyx.call.answered")
    ]
    assert sorted(listed) == sorted(answered)


def test_script_lines_can_say_when_they_are_spoken() -> None:
    assert parse_script("[0.30-2.04] outbound: Acme support\n[2.5] hello\nno time") == [
        ScriptLine("outbound", "Acme support", 0.3, 2.04),
        ScriptLine("inbound", "hello", 2.5, None),
        ScriptLine("inbound", "no time"),
    ]
    with pytest.raises(ValueError, match="line 1"):
        parse_script("[3-2] inbound: backwards")


def test_wav_length_is_read_from_any_encoding(tmp_path: Path) -> None:
    from importlib.resources import files

    from telnyx_simulator.main import SAMPLE_AUDIO

    sample = (files("telnyx_simulator") / "data" / SAMPLE_AUDIO).read_bytes()
    assert 8.0 < wav_seconds(sample) < 9.5 and len(sample) < 300_000
    with pytest.raises(ValueError):
        wav_seconds(b"RIFF\0\0\0\0WAVEjunk")


def session_processes(session: int) -> list[int]:
    """The live processes of a session: all that a process started with ``start_new_session``
    started, even those whose parent died and that were adopted by init."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, _, sid = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(sid) == session and state != "Z":
            found.append(int(stat.parent.name))
    return found


def test_simulate_with_its_own_stack_checks_recordings_and_transcripts_of_required_services(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TELNYX_")}
    ports = (
        "VOICETAP_EMBEDDED_REDIS_PORT",
        "GATEWAY_PORT",
        "INGEST_PORT",
        "INDEXER_PORT",
        "CONSOLE_PORT",
        "SIMULATOR_API_PORT",
    )
    temporary = tmp_path / "tmp"  # where the run makes its stack's directory (no --data-dir)
    temporary.mkdir()
    env.update(
        {name: str(free_port()) for name in ports}, LOG_FORMAT="console", TMPDIR=str(temporary)
    )
    args = [
        "simulate", "--start-stack", "--require", "ingest,indexer",
        "--calls", "2", "--duration", "2.5", "--wait", "20", "--settle", "10", "--json",
    ]  # fmt: skip
    process = subprocess.Popen(
        [VOICETAP, *args], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    kept = list(temporary.glob("voicetap-simulate-*"))  # a failing run keeps its stack's log
    log = "".join(path.read_text(errors="replace") for d in kept for path in d.glob("stack.log"))
    assert process.returncode == 0, f"{out}\n{err}\n--- stack.log:\n{log[-3000:]}"
    assert kept == [], "a passing run removes its temporary stack directory"
    summary = json.loads(out)
    assert summary["ok"] and {name: s["required"] for name, s in summary["services"].items()} == {
        "gateway": False, "ingest": True, "indexer": True, "console": True,
    }, out  # fmt: skip
    assert checks_of(summary) == {
        "gateway": "pass", "ingest": "pass", "indexer": "pass", "console": "pass", "webhooks": "pass",
        "topics": "pass", "media": "pass", "recordings": "pass", "transcripts": "pass",
    }, out  # fmt: skip
    assert len(summary["calls"]) == 2
    for call in summary["calls"]:
        assert (
            call["recording_seconds"] is not None
            and abs(call["recording_seconds"] - call["media_seconds"]) < 0.5
        )
        assert call["transcript_lines"] >= 1 and call["transcript_url"] and call["search_word"]
    # The stack is stopped with the run: nothing it started is left (given time to exit).
    deadline = time.monotonic() + 10
    while (left := session_processes(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind: {left}"


def test_demo_plays_a_call_prints_where_to_look_and_the_stack_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TELNYX_")}
    ports = {
        name: str(free_port())
        for name in (
            "VOICETAP_EMBEDDED_REDIS_PORT",
            "GATEWAY_PORT",
            "INGEST_PORT",
            "INDEXER_PORT",
            "CONSOLE_PORT",
            "SIMULATOR_API_PORT",
        )
    }
    env.update(
        ports,
        VOICETAP_DATA_DIR=str(tmp_path / "data"),
        GATEWAY_HOST="127.0.0.1",
        LOG_FORMAT="console",
    )
    process = subprocess.Popen(
        [VOICETAP, "up", "--demo"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    finished = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "simulator finished with exit code" in line:
                finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert finished.wait(45), "".join(output)
        text = "".join(output)
        ingest, indexer = (f"http://127.0.0.1:{ports[p]}" for p in ("INGEST_PORT", "INDEXER_PORT"))
        assert "simulator finished with exit code 0" in text and "result: PASS" in text, text
        for name in ("gateway", "ingest", "indexer", "console"):  # every service the stack runs
            assert re.search(rf"^  {name} .* running \(required\)$", text, re.MULTILINE), text
        assert "Where to look:" in text
        assert f"console      http://127.0.0.1:{ports['CONSOLE_PORT']}/calls/v3:" in text
        assert f"{ingest}/calls/v3:" in text and "/recording.wav" in text
        assert f"{indexer}/calls/v3:" in text and "/transcript?format=txt" in text
        assert f"{indexer}/search?q=" in text
        # The hint names the command as this user can run it: `voicetap` only when on PATH.
        program = "voicetap" if shutil.which("voicetap", path=env.get("PATH")) else "python3 dev.py"
        assert f"  live events  {program} tail telnyx.call.transcription" in text
        assert process.poll() is None, "the stack keeps running after the demo"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(5)
    assert process.returncode == 0, "".join(output)
