"""Optional: sample the server under test with py-spy during saturation, and summarise where it spends.

py-spy is not a project dependency: install it anywhere (``pip install --target /tmp/pyspy py-spy``)
and pass ``--profile`` (it is looked up on PATH, then in /tmp/pyspy/bin). The profile is written
in collapsed-stack format (one line per stack, ``frame;frame;... count``), which flamegraph tools
and speedscope read; the summary lists the frames with most samples, self and inclusive.
"""

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from harness.machine import CpuPlan


def find_py_spy() -> str | None:
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path("/tmp/pyspy/bin/py-spy")] if p.exists()), None
    )


def start(
    py_spy: str, pid: int, duration_s: float, out: Path, cpus: CpuPlan, rate: int = 250
) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` and its children (non-blocking: the target is never paused)."""
    argv = [
        *cpus.prefix(cpus.load_cpus),
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate",
        str(rate),
        "--duration",
        str(max(1, int(duration_s))),
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)": keep function and file, drop the line
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(where).parts
    short = "/".join(parts[-2:]) if parts else where
    return f"{name} ({short})"


def summarise(collapsed: Path, expected_samples: int, top: int = 25) -> dict[str, object]:
    """Top frames by self and inclusive share; ``on_cpu_share``: samples taken / samples expected
    (py-spy leaves out samples of an idle thread, so this is roughly the busy share of the loop)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[dict[str, object]]:
        return [{"frame": f, "share": round(c / total, 3)} for f, c in counter.most_common(top)]

    return {
        "samples": total,
        "on_cpu_share": round(total / expected_samples, 3) if expected_samples else None,
        "self": share(self_counts),
        "inclusive": share(inclusive),
    }
