"""Child processes run together and stopped together: the services of ``voicetap up``, the
workers of ``voicetap ingest --workers N``.

Each child dies with its parent (PR_SET_PDEATHSIG on Linux), so not even a killed supervisor
leaves processes behind. A child counts as started once its ``/readyz`` answers 200; one that
exits before that cannot start (a setting, a port, a dependency) and stops them all with its own
last error line, while one that crashes after it was ready is restarted with backoff.
"""

import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from voicetap_common.child_output import OutputTail
from voicetap_common.lifetime import die_with_parent

log = logging.getLogger("voicetap.supervisor")

NOT_READY_WARNING_SECONDS = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """A service (kept running) or a one-shot tool such as the demo (``restart=False``).

    ``command``: its argv; ``env``: what it gets beyond the supervisor's environment; ``pass_fds``:
    sockets it inherits (kept open here, so a restarted child gets the same ones). ``ready_url``
    is polled until it answers 200; a child without one counts as ready at once."""

    name: str
    command: tuple[str, ...]
    restart: bool = True
    ready_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    output: OutputTail
    restarts: list[float] = field(default_factory=list)
    ready: bool = False
    finished: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own http URL
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Supervisor:
    def __init__(
        self,
        children: list[ChildSpec],
        env: Mapping[str, str],
        on_ready: Callable[[], None] = lambda: None,
        max_restarts_per_minute: int = 5,
        *,
        what: str = "stack",
        stop_seconds: float = 15.0,
    ) -> None:
        """``what`` the children form, as the log names it; ``stop_seconds``: how long they get to
        stop after SIGTERM before they are killed."""
        self._specs = children
        self._env = dict(env)
        self._on_ready = on_ready
        self._max_restarts = max_restarts_per_minute
        self._children: list[Child] = []
        self._stopping = False
        self._all_ready = False
        self._what = what
        self._stop_seconds = stop_seconds
        self.failure: str | None = None  # why it stopped by itself: a child's own last line

    def _spawn(self, spec: ChildSpec) -> Child:
        process = subprocess.Popen(
            spec.command,
            env={**self._env, **spec.env},
            pass_fds=spec.pass_fds,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        assert process.stderr is not None
        return Child(spec, process, OutputTail(process.stderr))

    def start(self, spec: ChildSpec | None = None) -> None:
        """Start every child, or one more (``spec``) once the stack runs."""
        for item in [spec] if spec else self._specs:
            child = self._spawn(item)
            self._children.append(child)
            log.info("started %s (pid %d)", item.name, child.process.pid)

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop_requested(self) -> bool:
        """Asked at every step: a signal handler may have set it meanwhile."""
        return self._stopping

    def run(self) -> int:
        """Watch the children until asked to stop, one cannot start or one keeps crashing;
        returns the exit code."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        started = time.monotonic()
        warned = False
        code = 0
        while not self.stop_requested():
            time.sleep(0.2)
            for child in list(self._children):
                if self.stop_requested():  # Ctrl-C reaches the children too: no restarts now
                    break
                status = child.process.poll()
                if status is None:
                    if not child.ready:
                        child.ready = child.spec.ready_url is None or answers(child.spec.ready_url)
                    continue
                code = max(code, self._exited(child, status))
            if not self._all_ready and all(c.ready for c in self._children):
                self._all_ready = True
                self._on_ready()
            elif not self._all_ready and not warned:
                if time.monotonic() - started > NOT_READY_WARNING_SECONDS:
                    warned = True
                    for child in self._children:
                        if not child.ready:
                            log.warning(
                                "%s is not ready after %.0f s (%s does not answer 200 yet)",
                                child.name,
                                NOT_READY_WARNING_SECONDS,
                                child.spec.ready_url,
                            )
        self.stop()
        return code

    def _exited(self, child: Child, status: int) -> int:
        """Handle a child that exited; the stack's exit code so far (1 once it must stop)."""
        if not child.spec.restart:
            if not child.finished:
                log.log(
                    logging.INFO if status == 0 else logging.ERROR,
                    "%s finished with exit code %s",
                    child.name,
                    status,
                )
                child.finished = True
                child.ready = True
            return 0
        if not child.ready:
            self.failure = (
                f"{child.name} cannot start (exit code {status}): {child.output.last_line()}"
            )
            log.error("%s; stopping the %s", self.failure, self._what)
            self._stopping = True
            return 1
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        if len(child.restarts) > self._max_restarts:
            self.failure = f"{child.name} exited with {status} and keeps crashing"
            log.error("%s; stopping the %s", self.failure, self._what)
            self._stopping = True
            return 1
        log.warning("%s exited with %s; restarting", child.name, status)
        time.sleep(min(2 ** (len(child.restarts) - 1) * 0.5, 10))
        child.output.close()
        restarted = self._spawn(child.spec)
        child.process, child.output = restarted.process, restarted.output
        return 0

    def stop(self) -> None:
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_seconds
        for child in self._children:
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
            child.output.close()
        log.info("%s stopped", self._what)


def child_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    env = dict(base)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
