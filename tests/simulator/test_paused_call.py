"""`voicetap simulate` beside `examples/pci_pause`: a call paused and resumed mid-way passes its
closing check, the silent pause counted (issue 11, point 2)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from voicetap_cli.embedded_redis import free_port

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
PCI_PAUSE = Path(__file__).resolve().parents[2] / "examples" / "pci_pause" / "pci_pause.py"
PORTS = (
    "VOICETAP_EMBEDDED_REDIS_PORT", "GATEWAY_PORT", "INGEST_PORT", "INDEXER_PORT", "SIMULATOR_API_PORT",
)  # fmt: skip


def wait_for_redis(port: int, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with Redis(port=port, socket_connect_timeout=0.5) as redis:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                redis.ping()
                return
            except RedisConnectionError:
                time.sleep(0.1)
    raise AssertionError(f"the started stack's Redis never answered on port {port}")


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_a_call_paused_and_resumed_by_pci_pause_passes_its_recording_check(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TELNYX_")}
    env.update({name: str(free_port()) for name in PORTS}, LOG_FORMAT="console")
    simulate = subprocess.Popen(
        [VOICETAP, "simulate", "--start-stack", "--data-dir", str(tmp_path / "stack"),
         "--require", "ingest,indexer", "--duration", "9", "--redeliver-probability", "0",
         "--wait", "30", "--settle", "15", "--json"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    pauser: subprocess.Popen[str] | None = None
    try:
        wait_for_redis(int(env["VOICETAP_EMBEDDED_REDIS_PORT"]), simulate, 60)
        # No --redis-url: the example finds the stack's embedded Redis by itself.
        pauser = subprocess.Popen(
            [sys.executable, str(PCI_PAUSE), "--phrase", "order number", "--pause-seconds", "1",
             "--from", "beginning"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        out, err = simulate.communicate(timeout=120)
    finally:
        stop(simulate)
        pause_log = stop(pauser)[1] if pauser is not None else ""
    log = "".join(p.read_text(errors="replace") for p in (tmp_path / "stack").glob("stack.log"))
    summary = json.loads(out) if out.strip().startswith("{") else {}
    context = f"{out}\n{err}\n--- pci_pause:\n{pause_log[-2000:]}\n--- stack.log:\n{log[-3000:]}"
    assert simulate.returncode == 0, context
    [call] = summary["calls"]
    assert call["media"].count("fork_start") >= 2, context  # forked, paused, forked again
    assert call["recording_seconds"] > call["media_seconds"] + 0.5, context  # the silent pause
