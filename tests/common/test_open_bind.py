"""Fail closed: a service listening beyond loopback with no ``VOICETAP_API_TOKEN`` refuses to start
(one line naming the variable, exit 2, no traceback), unless ``VOICETAP_INSECURE_NO_AUTH=true``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicetap_cli.embedded_redis import free_port

SERVICES = [
    ("transcript_indexer", "voicetap indexer", "INDEXER_HOST"),
    ("media_ingest.main", "voicetap ingest", "INGEST_HOST"),
]


def _start(tmp_path: Path, module: str, **env: str) -> subprocess.Popen[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INDEXER_", "INGEST_", "TELNYX_", "VOICETAP_"))
    }
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env={**clean, "VOICETAP_DATA_DIR": str(tmp_path), **env},
        cwd=tmp_path,  # no .env file here
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("module", "program", "variable"), SERVICES)
def test_beyond_loopback_without_a_token_the_service_refuses_to_start(
    tmp_path: Path, module: str, program: str, variable: str
) -> None:
    process = _start(tmp_path, module, **{variable: "0.0.0.0"})
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert stderr.startswith(f"{program}: {variable}=0.0.0.0 listens beyond loopback")
    assert "set VOICETAP_API_TOKEN" in stderr and "Traceback" not in stderr
    assert stderr.count("\n") == 1


@pytest.mark.parametrize(("module", "program", "variable"), SERVICES)
def test_the_insecure_mode_starts_and_says_so(
    tmp_path: Path, redis_url: str, module: str, program: str, variable: str
) -> None:
    port = str(free_port())
    env = {
        variable: "0.0.0.0",
        variable.replace("HOST", "PORT"): port,
        "VOICETAP_INSECURE_NO_AUTH": "true",
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "console",
        "INGEST_RTP_HOST": "127.0.0.1",
    }
    process = _start(tmp_path, module, **env)
    try:
        _, stderr = process.communicate(timeout=3)
        running = False
    except subprocess.TimeoutExpired:  # still running: it started
        running = True
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert running, stderr
    assert "VOICETAP_INSECURE_NO_AUTH=true" in stderr, stderr
    assert "listens beyond loopback" not in stderr
