"""The stack the simulator plays against: which services answer, its development keys, and a
stack of its own (``--start-stack``) when none runs.

The simulator never imports the services or the ``voicetap`` command: it finds them as a user
would, by their HTTP probes, the keys file ``voicetap up`` writes, and the ``voicetap`` program.
"""

import asyncio
import ctypes
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import IO

import httpx

log = logging.getLogger("voicetap.simulator.stack")

DEV_KEYS_FILE = "dev-webhook-keys.json"  # written by `voicetap up` under VOICETAP_DATA_DIR
SERVICES_GROUP = "voicetap.services"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class DevKeys:
    """Local mode's keys: the gateway trusts ``public_key``, the fake API accepts ``api_key``."""

    private_key: str
    public_key: str
    api_key: str | None


def read_dev_keys(path: Path) -> DevKeys | None:
    """The keys file, or None when it does not exist (yet)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a keys file ({exc})") from exc
    if not isinstance(stored, dict) or "private_key" not in stored:
        raise ValueError(f"{path}: no private_key in it")
    return DevKeys(stored["private_key"], stored.get("public_key", ""), stored.get("api_key"))


def installed_services() -> set[str]:
    """Services whose code is installed here: those ``voicetap up`` starts (same rule as it uses)."""
    found: set[str] = set()
    for ep in entry_points(group=SERVICES_GROUP):
        try:
            if find_spec(ep.module) is not None:
                found.add(ep.name)
        except ImportError:  # the package is there, the module is not (a service being written)
            continue
    return found


@dataclass(frozen=True)
class Probe:
    """What ``GET <url>/readyz`` said: ready, or why not."""

    name: str
    url: str
    ready: bool
    detail: str


async def probe(client: httpx.AsyncClient, name: str, url: str) -> Probe:
    try:
        response = await client.get(f"{url}/readyz", timeout=2.0)
    except httpx.HTTPError as exc:
        reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        return Probe(name, url, False, f"no answer ({reason})")
    if response.status_code == 200:
        return Probe(name, url, True, "ready")
    body = " ".join(response.text.split())[:200]
    return Probe(
        name, url, False, f"not ready: /readyz answered {response.status_code} {body}".strip()
    )


async def wait_ready(client: httpx.AsyncClient, name: str, url: str, deadline: float) -> Probe:
    """Probe until the service is ready or ``deadline`` (monotonic) passes; the last probe."""
    while True:
        found = await probe(client, name, url)
        if found.ready or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.25)


def _die_with_parent() -> None:
    """``preexec_fn``: the stack gets SIGTERM if the simulator dies without stopping it (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def voicetap_command() -> list[str]:
    """The ``voicetap`` program of this environment."""
    beside = Path(sys.executable).with_name("voicetap")
    if beside.exists():
        return [str(beside)]
    if found := shutil.which("voicetap"):
        return [found]
    return [sys.executable, "-c", "from voicetap_cli.main import main; main()"]


# Variables that would take the stack out of local mode or point it at another Redis.
_REAL_TELNYX = ("TELNYX_API_KEY", "TELNYX_PUBLIC_KEY", "TELNYX_BASE_URL")


class StartedStack:
    """``voicetap up`` in local mode as a child process, its output in ``<data_dir>/stack.log``."""

    def __init__(self, data_dir: Path, env: Mapping[str, str]) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "stack.log"
        self._env = {k: v for k, v in env.items() if k not in _REAL_TELNYX}
        self._env["VOICETAP_DATA_DIR"] = str(data_dir)
        self._env.setdefault("GATEWAY_HOST", "127.0.0.1")
        self._env.setdefault("LOG_FORMAT", "console")
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [*voicetap_command(), "up"],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.info("started `voicetap up` (pid %d), its log in %s", self._process.pid, self.log_path)

    def exited(self) -> int | None:
        """The stack's exit code once it has exited, else None."""
        return None if self._process is None else self._process.poll()

    async def wait_for_keys(self, timeout: float) -> DevKeys:
        """The development keys the stack writes as it starts."""
        deadline = time.monotonic() + timeout
        path = self.data_dir / DEV_KEYS_FILE
        while True:
            keys = read_dev_keys(path) if path.exists() else None
            if keys is not None and keys.api_key:
                return keys
            if (code := self.exited()) is not None:
                raise RuntimeError(f"`voicetap up` exited with code {code} (see {self.log_path})")
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"`voicetap up` wrote no keys in {timeout:.0f} s (see {self.log_path})"
                )
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ctrl-C the stack and wait for it; killed if it does not stop in ``timeout``."""
        process, self._process = self._process, None
        try:
            if process is None:
                return None
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("`voicetap up` did not stop in %.0f s; killing it", timeout)
                process.kill()
                return process.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def env_for_started_stack(
    base: Mapping[str, str],
    *,
    gateway_port: int,
    ingest_port: int,
    indexer_port: int,
    console_port: int,
    api_port: int,
) -> dict[str, str]:
    """The environment of a started stack: the simulator's ports, so both sides agree."""
    env = dict(base)
    env.update(
        GATEWAY_PORT=str(gateway_port),
        INGEST_PORT=str(ingest_port),
        INDEXER_PORT=str(indexer_port),
        CONSOLE_PORT=str(console_port),
        SIMULATOR_API_PORT=str(api_port),
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("INGEST_PUBLIC_URL", f"ws://127.0.0.1:{ingest_port}")
    return env
