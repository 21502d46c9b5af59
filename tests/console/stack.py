"""The whole stack as a user runs it (``voicetap up`` in local mode, every port free and none a
standard one), simulated calls (``voicetap simulate``) and a real Chromium driven by Playwright."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from voicetap_cli.embedded_redis import free_port

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
SERVICES = ("console", "gateway", "ingest", "indexer")


def stack_env(data_dir: Path) -> dict[str, str]:
    ports = {name: free_port() for name in (*SERVICES, "redis", "api")}
    rtp = 20_000 + (os.getpid() * 37) % 30_000  # a window of its own, away from the default
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TELNYX_PUBLIC_KEY"}}
    env.update(
        VOICETAP_DATA_DIR=str(data_dir),
        VOICETAP_EMBEDDED_REDIS_PORT=str(ports["redis"]),
        SIMULATOR_API_PORT=str(ports["api"]),
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(ports["gateway"]),
        INGEST_HOST="127.0.0.1",
        INGEST_PORT=str(ports["ingest"]),
        INGEST_RTP_HOST="127.0.0.1",
        INGEST_RTP_PORTS=f"{rtp}-{rtp + 39}",
        INGEST_PUBLIC_URL=f"ws://127.0.0.1:{ports['ingest']}",
        INDEXER_PORT=str(ports["indexer"]),
        CONSOLE_PORT=str(ports["console"]),
        CONSOLE_GATEWAY_URL=f"http://127.0.0.1:{ports['gateway']}",
        CONSOLE_INGEST_URL=f"http://127.0.0.1:{ports['ingest']}",
        CONSOLE_INDEXER_URL=f"http://127.0.0.1:{ports['indexer']}",
        LOG_FORMAT="console",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Stack:
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.env['CONSOLE_PORT']}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.env['VOICETAP_EMBEDDED_REDIS_PORT']}/0"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[service.upper() + '_PORT']}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(SERVICES)
        while waiting:
            if self.process.poll() is not None:
                raise AssertionError(f"`voicetap up` exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready in {timeout} s: {', '.join(waiting)}")
            try:
                if httpx.get(self.url(waiting[0]) + "/readyz", timeout=1).status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def simulate(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """``voicetap simulate`` against this stack, in the background."""
        with log.open("wb") as out:
            return subprocess.Popen(
                [VOICETAP, "simulate", "--", "--wait", "30", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_stack(directory: Path, extra: Mapping[str, str] | None = None) -> Stack:
    env = stack_env(directory / "data")
    env.update(extra or {})
    log = directory / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [VOICETAP, "up"], env=env, cwd=directory, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack = Stack(env, process, log)
    try:
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack
