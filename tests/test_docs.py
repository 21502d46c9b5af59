"""The README's settings and topic tables are generated from the code, and current; the command
lines of the READMEs work as written (those a CI run can execute) or say why they are not run."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from redis import Redis

from docs.generate_readme_tables import render
from voicetap_cli.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_are_current() -> None:
    current = (ROOT / "README.md").read_text()
    assert render(current) == current, (
        "README.md tables are stale: run `.venv/bin/python -m docs.generate_readme_tables`"
    )


# -- the command lines of the READMEs work as written --------------------------------------------
DOCUMENTS = (
    "README.md",
    "examples/keyword_alerter/README.md",
    "examples/pci_pause/README.md",
    "examples/faststream_app/README.md",
    "docs/CONSUMERS.md",
    "services/simulator/README.md",
)
# Command lines that a CI run cannot execute as written, each with why. Any other command line in a
# `sh` block of DOCUMENTS is executed by test_readme_command_lines_work_as_written.
NOT_IN_CI = {
    "python3 dev.py test": "the test suite itself",
    "python3 dev.py up --demo": "a stack of its own; tests/simulator/test_simulate.py runs the demo",
    "cd examples/keyword_alerter": "the example's commands run from the repository here",
    "cd examples/pci_pause": "the example's commands run from the repository here",
    "cd examples/faststream_app": "the example's commands run from the repository here",
    "python3 -m venv .venv && .venv/bin/pip install ../../libs/sdk .": (
        "installs from the package index (tests/examples import the example beside the SDK)"
    ),
    "python3 -m venv .venv && .venv/bin/pip install ../../libs/sdk[faststream] .": (
        "installs from the package index (tests/examples import the example beside the SDK)"
    ),
    ".venv/bin/faststream run call_summaries:create_app --factory": (
        "tests/examples/test_faststream_app.py runs the app against a real Redis"
    ),
    ".venv/bin/faststream docs gen call_summaries:create_app --factory": (
        "tests/examples/test_faststream_app.py checks the document FastStream generates"
    ),
    "python3 dev.py call fork_stop v3:CALL_CONTROL_ID": "needs the id of a live call",
    "python3 dev.py call fork_start v3:CALL_CONTROL_ID": "needs the id of a live call",
    "python3 dev.py simulate --calls 20 --duration 30 --concurrency 10": "a load run (10 minutes of audio)",
    "python3 dev.py simulate --start-stack --calls 5 --require ingest,indexer --json": (
        "a stack of its own; tests/simulator/test_simulate.py runs --start-stack"
    ),
}
NOT_IN_CI_PREFIXES = {"redis-cli ": "redis-cli is separate software, which dev.py does not install"}


def documented_command_lines() -> list[tuple[str, list[str]]]:
    """(document, argv) of every command line in the documents' `sh` blocks (continuations joined,
    comments dropped)."""
    found = []
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                argv = shlex.split(line, comments=True)
                if argv:
                    found.append((document, argv))
    return found


def not_in_ci(argv: list[str]) -> str | None:
    line = " ".join(argv)
    prefix = next((why for p, why in NOT_IN_CI_PREFIXES.items() if line.startswith(p)), None)
    return NOT_IN_CI.get(line, prefix)


def test_every_documented_command_line_is_run_or_says_why_not() -> None:
    lines = documented_command_lines()
    assert len(lines) > 10, "the READMEs' `sh` blocks were not found"
    unknown = [
        (document, " ".join(argv))
        for document, argv in lines
        if not_in_ci(argv) is None and _runner(argv) is None
    ]
    assert unknown == [], "command lines neither run by this test nor listed in NOT_IN_CI"


def _runner(argv: list[str]) -> str | None:
    """How test_readme_command_lines_work_as_written runs a command line, None: it cannot."""
    if argv == ["python3", "dev.py", "up"]:
        return "the stack"
    if argv[:2] == ["python3", "dev.py"] and argv[2:3] == ["tail"]:
        return "follows until interrupted"
    if argv[:2] == ["python3", "dev.py"] and argv[-1] == "--help":
        return "exits 0"
    if argv[0].startswith(".venv/bin/") and _example_script(argv[0]) is not None:
        return "runs until interrupted"
    return None


def _example_script(path: str) -> tuple[Path, str] | None:
    """The example directory and `module:function` of a script an example's package installs."""
    name = path.removeprefix(".venv/bin/")
    for pyproject in (ROOT / "examples").glob("*/pyproject.toml"):
        scripts = tomllib.loads(pyproject.read_text())["project"].get("scripts", {})
        if name in scripts:
            return pyproject.parent, scripts[name]
    return None


def _stop(process: "subprocess.Popen[str]") -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_readme_command_lines_work_as_written(tmp_path: Path) -> None:
    """The documented command lines, as a newcomer who followed the README runs them: the stack
    started with `python3 dev.py up`, then every other runnable line beside it (the examples with
    their documented options and no --redis-url: they must find the stack's Redis)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_CLUSTER")}
    env = {k: v for k, v in env.items() if not k.startswith("TELNYX_")}
    ports = ("VOICETAP_EMBEDDED_REDIS_PORT", "GATEWAY_PORT", "INGEST_PORT", "INDEXER_PORT")
    env.update({name: str(free_port()) for name in ports}, VOICETAP_DATA_DIR=str(tmp_path / "data"))
    env.update(SIMULATOR_API_PORT=str(free_port()), LOG_FORMAT="console")
    runnable = [argv for _, argv in documented_command_lines() if not_in_ci(argv) is None]
    assert ["python3", "dev.py", "up"] in runnable
    stack = subprocess.Popen(
        ["python3", "dev.py", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _ready(f"http://127.0.0.1:{env['GATEWAY_PORT']}/readyz"):
            assert stack.poll() is None and time.monotonic() < deadline, "the stack never got ready"
            time.sleep(0.2)
        redis = Redis(port=int(env["VOICETAP_EMBEDDED_REDIS_PORT"]))
        for argv in runnable:
            if argv != ["python3", "dev.py", "up"]:
                _run_beside_the_stack(argv, env, redis)
        redis.close()
    finally:
        out, err = _stop(stack)
    assert stack.returncode == 0, err[-3000:]


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _run_beside_the_stack(argv: list[str], env: dict[str, str], redis: Redis) -> None:
    line = " ".join(argv)
    if argv[-1] == "--help":
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("usage: "), (line, done.stderr)
        return
    example = _example_script(argv[0])
    if example is not None:
        directory, target = example
        module, function = target.split(":")
        command = [sys.executable, "-c", f"from {module} import {function}; {function}()"]
        command += argv[1:]
        env = {**env, "PYTHONPATH": str(directory)}
    else:
        command = argv
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(4)  # long enough to connect, create its group and fail if it is to fail
    alive = process.poll() is None
    out, err = _stop(process)
    assert alive, f"{line} exited with {process.returncode}: {err[-2000:]}"
    assert process.returncode == 0 and "Traceback" not in err, (line, err[-2000:])
    if example is not None:  # it found the stack's Redis by itself: its group is there
        groups = [
            g["name"].decode()
            for stream in redis.scan_iter(match="telnyx.call.transcription*", _type="stream")
            for g in redis.xinfo_groups(stream)
        ]
        assert directory.name in groups, (line, groups)
    else:
        assert "following" in err, (line, err)
