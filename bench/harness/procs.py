"""The server under test: a subprocess started pinned, checked ready, measured, stopped."""

import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

from voicetap_common.lifetime import die_with_parent


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _command(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()[:160]
        )
    except OSError:
        return ""


class ServerProcess:
    """One server (with whatever worker processes it forks) in its own process group."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def wait_ready(
        self, host: str, port: int, path: str = "/healthz", timeout: float = 60.0
    ) -> float:
        """Seconds until ``GET path`` answered 200; raises with the server's log when it did not."""
        assert self._process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                conn = http.client.HTTPConnection(host, port, timeout=1)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.monotonic() - started
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} was not ready on {host}:{port}{path} within {timeout} s:\n{self.log_tail()}"
        )

    def memory(self) -> dict[str, object]:
        """Peak (VmHWM) and current (VmRSS) resident memory of every process of the server."""
        processes = []
        for pid in process_tree(self.pid):
            hwm, rss = _status_kib(pid, "VmHWM"), _status_kib(pid, "VmRSS")
            if hwm is not None:
                processes.append(
                    {"pid": pid, "command": _command(pid), "peak_rss_kib": hwm, "rss_kib": rss}
                )
        total = sum(int(p["peak_rss_kib"]) for p in processes)
        return {"peak_rss_mib_total": round(total / 1024, 1), "processes": processes}

    def cpu_seconds(self) -> float:
        """User + system CPU time of every process of the server so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in process_tree(self.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / ticks

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            os.killpg(
                self._process.pid, signal.SIGTERM
            )  # our own process group (start_new_session)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._log:
            self._log.close()
        self._process = None
