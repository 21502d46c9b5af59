"""Every command's expected failures, as a user meets them: one line, a non-zero exit, no traceback.

Each command runs as a subprocess (the `voicetap` script) against a Redis that is not there and
against a malformed REDIS_URL; usage mistakes (bad JSON, a bad `--rx`, `--count 0`) are refused
in one line with exit status 2.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
NOT_ON_PATH = "/usr/bin:/bin"  # `voicetap` is not there: hints say `python3 dev.py ...`

# Every command that talks to Redis, with arguments that would otherwise be fine.
REDIS_COMMANDS = {
    "topics": ["topics"],
    "tail": ["tail", "telnyx.call.answered", "--count", "1"],
    "replay": ["replay", "telnyx.call.answered", "--group", "indexer", "--from", "beginning"],
    "call": ["call", "fork_stop", "v3:call-1", "--timeout", "1"],
}


def dead_port() -> int:
    """A port nothing listens on (taken from the system and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def voicetap(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_CLUSTER")}
    return subprocess.run(
        [VOICETAP, *args],
        env={**base, "PATH": NOT_ON_PATH, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", REDIS_COMMANDS)
def test_every_command_against_the_embedded_redis_that_is_not_running(command: str) -> None:
    port = dead_port()
    done = voicetap(*REDIS_COMMANDS[command], VOICETAP_EMBEDDED_REDIS_PORT=str(port))
    assert one_line(done) == (
        f"voicetap {command}: cannot reach Redis at redis://127.0.0.1:{port}/0"
        " — is `python3 dev.py up` running?"
    )
    assert done.returncode == 1
    assert done.stdout == ""


@pytest.mark.parametrize("command", REDIS_COMMANDS)
def test_every_command_against_a_redis_url_that_answers_nowhere(command: str) -> None:
    port = dead_port()
    url = f"redis://app:s3cret@127.0.0.1:{port}/2"
    done = voicetap(*REDIS_COMMANDS[command], REDIS_URL=url)
    assert one_line(done) == (
        f"voicetap {command}: cannot reach Redis at redis://app:***@127.0.0.1:{port}/2 (REDIS_URL)"
        " — is that Redis running? Unset REDIS_URL to use the embedded Redis of `python3 dev.py up`"
    )
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", REDIS_COMMANDS)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("localhost:6379", "Redis URL must specify one of the following schemes"),
        ("redis://127.0.0.1:port/0", "Port could not be cast to integer value as 'port'"),
    ],
)
def test_every_command_with_a_malformed_redis_url(command: str, url: str, why: str) -> None:
    done = voicetap(*REDIS_COMMANDS[command], REDIS_URL=url)
    line = one_line(done)
    assert line.startswith(f"voicetap {command}: REDIS_URL={url!r} is not a Redis URL ({why}"), line
    assert line.endswith(
        "; set it like redis://HOST:PORT/DB, or unset it to use the embedded Redis of `up`"
    ), line
    assert done.returncode == 1


def test_keys_needs_no_redis_and_works_with_a_malformed_url() -> None:
    done = voicetap("keys", REDIS_URL="localhost:6379")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("TELNYX_PUBLIC_KEY=")


def test_a_json_option_that_is_not_json_is_refused_as_an_argument() -> None:
    done = voicetap(
        "call", "streaming_start", "v3:call-1", "--custom-parameters", "{bad",
        VOICETAP_EMBEDDED_REDIS_PORT=str(dead_port()),
    )  # fmt: skip
    assert one_line(done) == (
        "voicetap call streaming_start: argument --custom-parameters: not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1)): '{bad' "
        "(see `python3 dev.py call streaming_start --help`)"
    )
    assert done.returncode == 2


def test_an_invalid_rx_is_refused_before_anything_is_sent() -> None:
    done = voicetap(
        "call", "fork_start", "v3:call-1", "--rx", "10.0.0.1:4000", "--tx", "udp:10.0.0.1:4001",
        VOICETAP_EMBEDDED_REDIS_PORT=str(dead_port()),
    )  # fmt: skip
    assert one_line(done) == (
        "voicetap call: fork_start: --rx: must look like udp:HOST:PORT, got '10.0.0.1:4000'"
    )
    assert done.returncode == 2


def test_rx_without_tx_is_refused_in_one_line() -> None:
    done = voicetap(
        "call", "fork_start", "v3:call-1", "--rx", "udp:10.0.0.1:4000",
        VOICETAP_EMBEDDED_REDIS_PORT=str(dead_port()),
    )  # fmt: skip
    assert one_line(done) == (
        "voicetap call: fork_start: give both rx and tx, or neither (media_ingest then allocates them)"
    )
    assert done.returncode == 2


@pytest.mark.parametrize("count", ["0", "-3"])
def test_tail_refuses_a_count_below_one(count: str) -> None:
    done = voicetap("tail", "telnyx.call.answered", "--count", count)
    assert one_line(done) == (
        f"voicetap tail: argument --count: must be 1 or more, not {int(count)} "
        "(see `python3 dev.py tail --help`)"
    )
    assert done.returncode == 2


def test_a_usage_error_on_path_names_the_voicetap_help(tmp_path: Path) -> None:
    """With `voicetap` on PATH the hint is written the way the user runs it."""
    done = voicetap("tail", "t", "--count", "0", PATH=f"{Path(VOICETAP).parent}:{NOT_ON_PATH}")
    assert one_line(done).endswith("(see `voicetap tail --help`)")
    assert done.returncode == 2


@pytest.mark.parametrize("command", REDIS_COMMANDS)
def test_a_bad_setting_is_named_in_one_line(command: str) -> None:
    done = voicetap(*REDIS_COMMANDS[command], TOPIC_PARTITIONS="many")
    assert one_line(done) == (
        f"voicetap {REDIS_COMMANDS[command][0]}: invalid setting TOPIC_PARTITIONS='many': "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert done.returncode == 2
