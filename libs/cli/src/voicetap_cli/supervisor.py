"""``voicetap up``: every service of the stack in its own process, stopped together.

Each child dies with its parent (PR_SET_PDEATHSIG on Linux), so not even a killed supervisor
leaves processes behind; a child that crashes is restarted with backoff.
"""

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from voicetap_cli.lifetime import die_with_parent

log = logging.getLogger("voicetap.up")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    started: float
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, services: list[str], env: Mapping[str, str], max_restarts_per_minute: int = 5) -> None:
        self._services = services
        self._env = dict(env)
        self._max_restarts = max_restarts_per_minute
        self._children: dict[str, Child] = {}
        self._stopping = False

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "voicetap_cli.run", name],
            env=self._env,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    def start(self) -> None:
        for name in self._services:
            self._children[name] = Child(name, self._spawn(name), time.monotonic())
            log.info("started %s (pid %d)", name, self._children[name].process.pid)

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> int:
        """Watch the children until asked to stop or one keeps crashing; returns the exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        code = 0
        while not self._stopping:
            time.sleep(0.2)
            for child in self._children.values():
                status = child.process.poll()
                if status is None or self._stopping:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > self._max_restarts:
                    log.error("%s exited with %s and keeps crashing; stopping the stack", child.name, status)
                    self._stopping, code = True, 1
                    break
                log.warning("%s exited with %s; restarting", child.name, status)
                time.sleep(min(2 ** (len(child.restarts) - 1) * 0.5, 10))
                child.process = self._spawn(child.name)
        self.stop()
        return code

    def stop(self, timeout: float = 15.0) -> None:
        for child in self._children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self._children.values():
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
        log.info("stack stopped")


def child_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    env = dict(base)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
