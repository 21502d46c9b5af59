"""What a result was measured on, and which cores run what."""

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class CpuPlan:
    """Cores for the server under test, and for everything else (load generator, Redis, harness).

    On a 2-core machine the server gets core 0 to itself and the rest shares core 1, so the
    load generator never steals the server's CPU. With one core, or without ``taskset``, nothing
    is pinned and the JSON says so.
    """

    pinned: bool
    server_cpus: str
    load_cpus: str
    redis_cpus: str
    taskset: str | None

    @classmethod
    def choose(cls, server_cpus: str | None = None, load_cpus: str | None = None) -> "CpuPlan":
        cpus = sorted(os.sched_getaffinity(0))
        taskset = shutil.which("taskset")
        if taskset is None or len(cpus) < 2:
            everything = ",".join(map(str, cpus))
            return cls(False, everything, everything, everything, taskset)
        server = server_cpus or str(cpus[0])
        load = load_cpus or ",".join(str(c) for c in cpus if str(c) not in server.split(","))
        return cls(True, server, load, load, taskset)

    @classmethod
    def everywhere(cls) -> "CpuPlan":
        """Nothing pinned: a server of several processes measured on every core."""
        everything = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        return cls(False, everything, everything, everything, shutil.which("taskset"))

    def prefix(self, cpus: str) -> list[str]:
        """``taskset -c CPUS`` to put before a command (empty when not pinning)."""
        return [self.taskset, "-c", cpus] if self.pinned and self.taskset else []

    def pin_self_to_load_cpus(self) -> None:
        """The harness itself (and so the embedded Redis it starts) runs on the load cores."""
        if self.pinned:
            os.sched_setaffinity(0, {int(c) for c in self.load_cpus.split(",")})

    def as_json(self) -> dict[str, object]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "taskset"},
            "method": "taskset -c (server, load generator); sched_setaffinity (harness, Redis)"
            if self.pinned
            else "not pinned (several server processes, or taskset missing, or one core)",
        }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def cpu_ticks() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies since boot, from /proc/stat."""
    ticks: dict[str, tuple[int, int]] = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(v) for v in values]
                idle = numbers[3] + numbers[4]  # idle + iowait
                ticks[name[3:]] = (sum(numbers[:8]) - idle, sum(numbers[:8]))
    except (OSError, ValueError):
        pass
    return ticks


def cpu_busy_between(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    """Share of each core that was busy (any process, ours or not) between two ``cpu_ticks``."""
    busy = {}
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (0, 0))
        busy[cpu] = round((b1 - b0) / (t1 - t0), 2) if t1 > t0 else 0.0
    return busy


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def tool_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def package_versions(names: list[str]) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(repo: Path) -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def machine_info() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_mib": _mem_total_mib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average_at_start": load_average(),
    }
