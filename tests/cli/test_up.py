"""`voicetap up` as a user runs it: start, see one block of URLs once everything is ready, post a
signed webhook, read the topic, stop, nothing left; and a service that cannot start stops the stack
with its own error, without restarts."""

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


def wait_for_block(out: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """What `up` printed on stdout, once its ready block is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, (
            process.stderr.read().decode() if process.stderr else "exited"
        )
        text = out.read_text()
        if text.endswith("Ctrl-C stops everything.\n"):
            return text
        time.sleep(0.05)
    raise AssertionError(f"no ready block within {timeout} s: {out.read_text()!r}")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_up_runs_the_stack_and_leaves_nothing_behind(
    stack_env: dict[str, str], tmp_path: Path, stop_signal: int
) -> None:
    out = tmp_path / "stdout.txt"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [VOICETAP, "up"], env=stack_env, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE
        )
    try:
        gateway = f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}"
        ingest = f"http://127.0.0.1:{stack_env['INGEST_PORT']}"
        indexer = f"http://127.0.0.1:{stack_env['INDEXER_PORT']}"
        console = f"http://127.0.0.1:{stack_env['CONSOLE_PORT']}"
        block = wait_for_block(out, process)
        # Printed only once every service answers: each one is ready the moment it appears.
        for base in (console, gateway, ingest, indexer):
            assert httpx.get(base + "/readyz", timeout=2).status_code == 200, base
        for base in (gateway, ingest, indexer):  # a person opening a service finds the console
            home = httpx.get(base + "/", timeout=2)
            assert home.status_code == 200 and f'href="{console}/"' in home.text, base
        lines = block.splitlines()
        assert lines[0] == "voicetap is ready:" and lines[-1] == "Ctrl-C stops everything."
        urls = {line.split()[0]: line.split()[1] for line in lines[1:-1]}
        assert lines[1].split()[:2] == ["console", console + "/"], "the console comes first"
        assert urls == {
            "console": console + "/",
            "webhooks": gateway + "/webhooks/telnyx",
            "recordings": ingest + "/calls/<call_control_id>/recording.wav",
            "calls": indexer + "/calls",
            "search": indexer + "/search?q=<words>",
            "metrics": indexer + "/metrics",  # one line per service; the last one kept here
            "topics": f"redis://127.0.0.1:{stack_env['VOICETAP_EMBEDDED_REDIS_PORT']}/0",
        }
        assert [line.split()[1] for line in lines if line.split()[0] == "metrics"] == [
            base + "/metrics" for base in (console, gateway, ingest, indexer)
        ]
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


@pytest.mark.slow
def test_a_service_that_cannot_start_stops_the_stack_with_its_own_error(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """A mistake no check before the start can see (here: the indexer's database under a path
    whose parent is a file): the indexer exits before it is ever ready; `up` says so with the
    indexer's own last line and stops everything, without restarting it."""
    (tmp_path / "a-file").write_text("")
    stack_env["INDEXER_DATABASE_URL"] = f"sqlite:///{tmp_path}/a-file/db/transcripts.sqlite3"
    out = tmp_path / "stdout.txt"
    with out.open("wb") as stdout:
        done = subprocess.run(
            [VOICETAP, "up"],
            env=stack_env,
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=90,
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert out.read_text() == "", "no ready block for a stack that never was"
    assert err.count("started indexer") == 1, "a service that cannot start is never restarted"
    assert "restarting" not in err
    cannot = [line for line in err.splitlines() if "cannot start" in line]
    assert len(cannot) == 1, err
    assert cannot[0].endswith(
        "indexer cannot start (exit code 1): voicetap indexer: stopped after a failure: "
        f"NotADirectoryError: [Errno 20] Not a directory: "
        f"'{tmp_path}/a-file/db'; stopping the stack"
    ), cannot[0]
    assert "stack stopped" in err.splitlines()[-1]


def service_pid(up_pid: int, name: str) -> int:
    for pid in descendants(up_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[-3:-1] == [b"voicetap_cli.run", name.encode()]:
            return pid
    raise AssertionError(f"no {name} process under {up_pid}")


def restarted(up_pid: int, crashed: int) -> bool:
    try:
        return service_pid(up_pid, "ingest") != crashed
    except AssertionError:  # between the crash and the restart
        return False


@pytest.mark.slow
def test_a_service_that_crashes_after_it_was_ready_is_restarted(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "stdout.txt"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [VOICETAP, "up"], env=stack_env, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE
        )
    try:
        wait_for_block(out, process)
        crashed = service_pid(process.pid, "ingest")
        os.kill(crashed, signal.SIGKILL)
        ready = f"http://127.0.0.1:{stack_env['INGEST_PORT']}/readyz"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, "the stack stopped instead of restarting ingest"
            try:  # the killed ingest's workers answer a moment longer while they finish
                if (
                    restarted(process.pid, crashed)
                    and httpx.get(ready, timeout=1).status_code == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("ingest did not come back")
        assert service_pid(process.pid, "ingest") != crashed
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "ingest exited with -9; restarting" in err.decode()


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp shows them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK_V4 = "0100007F"  # 127.0.0.1
ANY_V4 = "00000000"  # 0.0.0.0


@pytest.mark.slow
def test_up_serves_call_content_on_loopback_unless_told_and_then_behind_the_token(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Without a token the servers of call content listen on 127.0.0.1 only; with one, a host the
    user chose beyond loopback is served and each route asks for the token."""
    for given in (
        {},
        {"INGEST_HOST": "0.0.0.0", "VOICETAP_API_TOKEN": "new-up-token,old-up-token"},
    ):
        env = {**stack_env, **given}
        env.update(
            VOICETAP_DATA_DIR=str(tmp_path / f"data-{len(given)}"),
            VOICETAP_EMBEDDED_REDIS_PORT=str(free_port()),
        )
        out = tmp_path / f"stdout-{len(given)}.txt"
        with out.open("wb") as stdout:
            process = subprocess.Popen(
                [VOICETAP, "up"], env=env, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE
            )
        try:
            wait_for_block(out, process)
            ingest_port, indexer_port = int(env["INGEST_PORT"]), int(env["INDEXER_PORT"])
            assert listening_addresses(indexer_port) == {LOOPBACK_V4}
            ingest = f"http://127.0.0.1:{ingest_port}"
            indexer = f"http://127.0.0.1:{indexer_port}"
            recording = f"{ingest}/calls/v3:none/recording.wav"
            if not given:
                assert listening_addresses(ingest_port) == {LOOPBACK_V4}
                assert httpx.get(recording, timeout=5).status_code == 404  # no credential needed
                continue
            assert listening_addresses(ingest_port) == {ANY_V4}
            assert httpx.get(recording, timeout=5).status_code == 401
            assert httpx.get(f"{indexer}/calls", timeout=5).status_code == 401
            for token in ("new-up-token", "old-up-token"):
                bearer = {"authorization": f"Bearer {token}"}
                assert httpx.get(recording, headers=bearer, timeout=5).status_code == 404
                assert httpx.get(f"{indexer}/calls", headers=bearer, timeout=5).status_code == 200
            link = subprocess.run(
                [VOICETAP, "link", "v3:none", "--what", "transcript"],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert link.returncode == 0, link.stderr
            opened = httpx.get(link.stdout.strip(), timeout=5)
            assert opened.status_code == 404 and opened.json()["error"] == "no call v3:none"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        assert process.returncode == 0
