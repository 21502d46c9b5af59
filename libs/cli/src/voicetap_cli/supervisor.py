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


@dataclass(frozen=True)
class ChildSpec:
    """A service (kept running) or a one-shot tool such as the demo (``restart=False``)."""

    name: str
    args: tuple[str, ...] = ()
    restart: bool = True


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)
    finished: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


class Supervisor:
    def __init__(
        self, children: list[ChildSpec], env: Mapping[str, str], max_restarts_per_minute: int = 5
    ) -> None:
        self._specs = children
        self._env = dict(env)
        self._max_restarts = max_restarts_per_minute
        self._children: list[Child] = []
        self._stopping = False

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "voicetap_cli.run", spec.name, *spec.args],
            env=self._env,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    def start(self, spec: ChildSpec | None = None) -> None:
        """Start every child, or one more (``spec``) once the stack runs."""
        for item in [spec] if spec else self._specs:
            child = Child(item, self._spawn(item))
            self._children.append(child)
            log.info("started %s (pid %d)", item.name, child.process.pid)

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> int:
        """Watch the children until asked to stop or one keeps crashing; returns the exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        code = 0
        while not self._stopping:
            time.sleep(0.2)
            for child in self._children:
                status = child.process.poll()
                if status is None or self._stopping:
                    continue
                if not child.spec.restart:
                    if not child.finished:
                        log.log(
                            logging.INFO if status == 0 else logging.ERROR,
                            "%s finished with exit code %s",
                            child.name,
                            status,
                        )
                        child.finished = True
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > self._max_restarts:
                    log.error(
                        "%s exited with %s and keeps crashing; stopping the stack",
                        child.name,
                        status,
                    )
                    self._stopping, code = True, 1
                    break
                log.warning("%s exited with %s; restarting", child.name, status)
                time.sleep(min(2 ** (len(child.restarts) - 1) * 0.5, 10))
                child.process = self._spawn(child.spec)
        self.stop()
        return code

    def stop(self, timeout: float = 15.0) -> None:
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self._children:
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
