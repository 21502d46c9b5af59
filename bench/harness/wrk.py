"""Saturation: wrk (closed loop, N keep-alive connections) replaying pre-built requests once each."""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.machine import CpuPlan, tool_version

REPLAY_SCRIPT = Path(__file__).with_name("replay.lua")


def require_wrk() -> str:
    """The wrk binary, or exit with how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "bench: `wrk` is not installed; it is the load generator (written in C, so that it does not steal the\n"
            "CPU the server under test needs). Install it with:  apt-get install -y wrk   (Debian/Ubuntu)\n"
            "                                                   brew install wrk          (macOS)"
        )
    return path


def wrk_version() -> str | None:
    version = tool_version([require_wrk(), "--version"])
    return version.split(" Copyright")[0] if version else None


@dataclass
class WrkRun:
    raw: dict[str, object]
    acked_ids: list[str]

    @property
    def duration_s(self) -> float:
        return int(self.raw["duration_us"]) / 1e6  # type: ignore[call-overload]

    @property
    def exhausted(self) -> bool:
        return int(self.raw["exhausted"]) > 0  # type: ignore[call-overload]


def run_wrk(
    url: str,
    *,
    requests_prefix: Path,
    acks_prefix: Path,
    threads: int,
    connections: int,
    duration_s: float,
    timeout_s: float,
    cpus: CpuPlan,
) -> WrkRun:
    argv = [
        *cpus.prefix(cpus.load_cpus),
        require_wrk(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration_s:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(REPLAY_SCRIPT),
        url,
        "--",
        str(requests_prefix),
        str(acks_prefix),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("WRKJSON ") :])
    acked_ids: list[str] = []
    for i in range(threads):
        acked_ids += acks_prefix.with_name(f"{acks_prefix.name}.{i}").read_text().split()
    if len(acked_ids) != raw["acked"]:
        raise RuntimeError(
            f"wrk counted {raw['acked']} 2xx answers with an id but wrote {len(acked_ids)} ids"
        )
    raw["command"] = " ".join(argv[argv.index(require_wrk()) :]).replace(require_wrk(), "wrk")
    return WrkRun(raw, acked_ids)
