"""`voicetap up` with a mistake: one line naming what is wrong and the setting or command that
fixes it, a non-zero exit, and nothing started or written (no Redis data, no service, no key in
somebody else's server)."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from voicetap_cli.embedded_redis import EmbeddedRedis
from voicetap_cli.ports import free_port
from voicetap_cli.stack_lock import StackLock

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
DEV_PY = Path(__file__).resolve().parents[2] / "dev.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "TELNYX_", "GATEWAY_", "INGEST_", "INDEXER_", "VOICETAP_"))
    }
    base.update(
        VOICETAP_DATA_DIR=str(tmp_path / "data"),
        VOICETAP_EMBEDDED_REDIS_PORT=str(free_port()),
        GATEWAY_PORT=str(free_port()),
        GATEWAY_HOST="127.0.0.1",
        INGEST_PORT=str(free_port()),
        INGEST_HOST="127.0.0.1",
        INDEXER_PORT=str(free_port()),
    )
    return base


def up(env: dict[str, str], cwd: Path, command: list[str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        command or [VOICETAP, "up"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "", "nothing is announced when nothing started"
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr


def nothing_started(tmp_path: Path) -> bool:
    return not (tmp_path / "data" / "redis").exists()


@pytest.fixture
def listening(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A server of somebody else's, listening on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_invalid_settings_of_every_service_are_listed_before_anything_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    env.update(INGEST_RTP_PORTS="abc", INDEXER_PORT="eighty", INDEXER_BATCH_SIZE="0")
    code, err = up(env, tmp_path)
    assert (code, err.splitlines()) == (
        2,
        [
            "voicetap up: invalid setting INGEST_RTP_PORTS='abc': must be a range of UDP ports "
            "FIRST-LAST, e.g. 40000-40999",
            "voicetap up: invalid setting INDEXER_PORT='eighty': Input should be a valid integer, "
            "unable to parse string as an integer",
            "voicetap up: invalid setting INDEXER_BATCH_SIZE='0': Input should be greater than 0",
        ],
    )
    assert nothing_started(tmp_path)


@pytest.mark.parametrize(
    "setting,value,message",
    [
        (
            "VOICETAP_EMBEDDED_REDIS_PORT",
            "abc",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        ("REDIS_TIMEOUT_SECONDS", "-1", "Input should be greater than 0"),
    ],
)
def test_an_invalid_setting_of_the_command_itself_is_one_line(
    env: dict[str, str], tmp_path: Path, setting: str, value: str, message: str
) -> None:
    env[setting] = value
    code, err = up(env, tmp_path)
    assert (code, err) == (2, f"voicetap up: invalid setting {setting}={value!r}: {message}\n")


def test_a_placeholder_telnyx_public_key_is_one_line_without_the_value(
    env: dict[str, str], tmp_path: Path
) -> None:
    env["TELNYX_PUBLIC_KEY"] = "REPLACE-WITH-YOUR-ACCOUNT-PUBLIC-KEY"
    code, err = up(env, tmp_path)
    assert (code, err) == (
        2,
        "voicetap up: invalid setting TELNYX_PUBLIC_KEY: is not an Ed25519 public key (base64 of "
        "32 bytes): copy the account's key from Portal → Keys & Credentials → Public Key, or unset "
        "it under `voicetap up` to trust a development key\n",
    )
    assert nothing_started(tmp_path)


def test_the_gateway_alone_refuses_a_placeholder_key_without_a_traceback(
    env: dict[str, str], tmp_path: Path
) -> None:
    env["TELNYX_PUBLIC_KEY"] = "REPLACE-WITH-YOUR-ACCOUNT-PUBLIC-KEY"
    done = subprocess.run(
        [VOICETAP, "gateway"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "Ed25519" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("setting", ["GATEWAY_PORT", "INGEST_PORT", "INDEXER_PORT"])
def test_a_busy_service_port_stops_up_before_anything_starts(
    env: dict[str, str], tmp_path: Path, listening: socket.socket, setting: str
) -> None:
    port = listening.getsockname()[1]
    env[setting] = str(port)
    code, err = up(env, tmp_path)
    assert (code, err) == (
        1,
        f"voicetap up: port {port} ({setting}) is in use: stop what listens there, "
        f"or set {setting} to a free port\n",
    )
    assert nothing_started(tmp_path)


def test_two_services_on_one_port_are_named(env: dict[str, str], tmp_path: Path) -> None:
    env["INDEXER_PORT"] = env["GATEWAY_PORT"]
    code, err = up(env, tmp_path)
    assert (code, err) == (
        1,
        f"voicetap up: port {env['GATEWAY_PORT']} is set for both GATEWAY_PORT and INDEXER_PORT: "
        "set one of them to another port\n",
    )


def test_a_host_that_is_not_this_machine_is_named(env: dict[str, str], tmp_path: Path) -> None:
    env["INGEST_HOST"] = "192.0.2.1"  # TEST-NET-1: never an address of this machine
    code, err = up(env, tmp_path)
    assert (code, err) == (
        1,
        f"voicetap up: port {env['INGEST_PORT']} (INGEST_PORT) cannot be bound: 192.0.2.1 is not "
        "an address of this machine: stop what listens there, or set INGEST_PORT to a free port\n",
    )


def test_a_foreign_server_on_the_embedded_port_is_never_written_to(
    env: dict[str, str], tmp_path: Path
) -> None:
    foreign = EmbeddedRedis(tmp_path / "foreign", appendonly=False)
    foreign.start()
    try:
        env["VOICETAP_EMBEDDED_REDIS_PORT"] = str(foreign.port)
        code, err = up(env, tmp_path)
        with Redis(port=foreign.port) as client:
            keys = client.keys("*")
    finally:
        foreign.stop()
    assert (code, err) == (
        1,
        f"voicetap up: port {foreign.port} (VOICETAP_EMBEDDED_REDIS_PORT) is in use: stop what "
        "listens there, or set VOICETAP_EMBEDDED_REDIS_PORT to a free port\n",
    )
    assert keys == [], "the stack wrote into a server it did not start"
    assert nothing_started(tmp_path)


def test_the_embedded_redis_refuses_a_port_another_server_holds(tmp_path: Path) -> None:
    from voicetap_cli.embedded_redis import EmbeddedRedisError

    with EmbeddedRedis(tmp_path / "first", appendonly=False) as first:
        second = EmbeddedRedis(tmp_path / "second", first.port, appendonly=False)
        with pytest.raises(EmbeddedRedisError) as refused:
            second.start()
        assert str(refused.value) == (
            f"port {first.port} (VOICETAP_EMBEDDED_REDIS_PORT) is in use by another server: set "
            "VOICETAP_EMBEDDED_REDIS_PORT to a free port, or REDIS_URL to use that server"
        )
        assert not second.running


def test_the_embedded_redis_never_takes_a_foreign_answer_for_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the port check cannot close: the port was free when checked, another server took
    it before ours bound. Whichever comes first, the foreign server's answer (with a pid that is not
    our child's) or our server's failure to bind, the start is refused and the foreign server kept."""
    from voicetap_cli import embedded_redis

    with EmbeddedRedis(tmp_path / "first", appendonly=False) as first:
        monkeypatch.setattr(embedded_redis, "bind_problem", lambda host, port: None)
        second = EmbeddedRedis(tmp_path / "second", first.port, appendonly=False)
        with pytest.raises(embedded_redis.EmbeddedRedisError) as refused:
            second.start()
        assert str(refused.value).startswith(f"port {first.port} (VOICETAP_EMBEDDED_REDIS_PORT)")
        assert not second.running
        with Redis(port=first.port) as client:
            assert client.ping()


def test_a_second_up_on_the_same_data_directory_names_the_running_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    running = StackLock(tmp_path / "data")
    running.acquire()
    try:
        code, err = up(env, tmp_path)
    finally:
        running.release()
    assert (code, err) == (
        1,
        f"voicetap up: a stack is already running with its data in {tmp_path / 'data'} "
        f"(pid {os.getpid()}): stop it first, or set VOICETAP_DATA_DIR to another directory\n",
    )
    assert nothing_started(tmp_path)


def test_a_redis_url_that_does_not_answer_is_said_once_up_front(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{port}/0"
    code, err = up(env, tmp_path)
    assert (code, err) == (
        1,
        f"voicetap up: Redis at redis://:***@127.0.0.1:{port}/0 (REDIS_URL) does not answer: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused; start it, fix REDIS_URL, "
        "or unset REDIS_URL to use the embedded Redis\n",
    )


def test_dev_py_reads_the_env_file_of_the_directory_it_is_run_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("INGEST_RTP_PORTS=5000\n")
    code, err = up(env, tmp_path, [sys.executable, str(DEV_PY), "up"])
    assert (code, err) == (
        2,
        "voicetap up: invalid setting INGEST_RTP_PORTS='5000': must be a range of UDP ports "
        "FIRST-LAST, e.g. 40000-40999\n",
    )


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    done = subprocess.run([VOICETAP, "--version"], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, f"voicetap {version('voicetap')}\n")


@pytest.mark.parametrize("variable", ["INGEST_HOST", "INDEXER_HOST"])
def test_a_server_of_call_content_beyond_loopback_needs_a_token(
    env: dict[str, str], tmp_path: Path, variable: str
) -> None:
    env[variable] = "0.0.0.0"
    code, err = up(env, tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"voicetap up: {variable}=0.0.0.0 listens beyond loopback")
    assert "set VOICETAP_API_TOKEN" in err
    assert nothing_started(tmp_path)
