"""The console holds call content and has no access control yet: it binds loopback only."""

import os
import subprocess
import sys

import pytest

from voicetap_console.settings import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_are_taken(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.com", ""])
def test_others_are_not(host: str) -> None:
    assert not is_loopback(host)


def test_a_console_bound_beyond_loopback_refuses_to_start_in_one_line() -> None:
    env = {**os.environ, "CONSOLE_HOST": "0.0.0.0"}
    done = subprocess.run(
        [sys.executable, "-m", "voicetap_cli.run", "console"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "CONSOLE_HOST='0.0.0.0'" in lines[0] and "loopback" in lines[0]
