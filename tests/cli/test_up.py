"""`voicetap up` as a user runs it: start, post a signed webhook, read the topic, stop, nothing left."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event
from voicetap_cli.embedded_redis import free_port

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, (
            process.stderr.read().decode() if process.stderr else "exited"
        )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout} s")


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TELNYX_PUBLIC_KEY"}}
    env.update(
        VOICETAP_DATA_DIR=str(tmp_path / "data"),
        VOICETAP_EMBEDDED_REDIS_PORT=str(free_port()),
        GATEWAY_PORT=str(free_port()),
        GATEWAY_HOST="127.0.0.1",
        INGEST_PORT=str(free_port()),
        INDEXER_PORT=str(free_port()),
        CONSOLE_PORT=str(free_port()),
    )
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_up_runs_the_stack_and_leaves_nothing_behind(
    stack_env: dict[str, str], tmp_path: Path, stop_signal: int
) -> None:
    process = subprocess.Popen(
        [VOICETAP, "up"], env=stack_env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    try:
        gateway = f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}"
        wait_ready(gateway + "/readyz", process)
        spawned = descendants(process.pid)
        assert len(spawned) >= 2, "the embedded Redis and the gateway run as children"

        keys = json.loads((tmp_path / "data" / "dev-webhook-keys.json").read_text())
        signer = WebhookSigner.from_private_key(keys["private_key"])
        body = make_event("call.answered", "up-1")
        response = httpx.post(gateway + "/webhooks/telnyx", content=body, headers=signer.sign(body))
        assert response.status_code == 200, response.text

        redis = Redis(port=int(stack_env["VOICETAP_EMBEDDED_REDIS_PORT"]))
        entries = redis.xrange("telnyx.call.answered")
        redis.close()
        assert [fields[b"event"] for _, fields in entries] == [body]

        topics = subprocess.run(
            [VOICETAP, "topics"], env=stack_env, capture_output=True, text=True, timeout=30
        )
        assert "telnyx.call.answered" in topics.stdout
    finally:
        process.send_signal(stop_signal)
        process.wait(30)
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in spawned if alive(pid)], "processes left behind"
    if stop_signal == signal.SIGINT:
        assert process.returncode == 0
    # The data survives: the append-only file is on disk.
    assert list((tmp_path / "data" / "redis").rglob("*.aof")) or list(
        (tmp_path / "data" / "redis").rglob("appendonly*")
    )
