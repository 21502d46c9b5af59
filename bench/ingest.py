"""Benchmark: concurrent forked two-leg PCMU calls into one media_ingest process, against a baseline.

    .venv/bin/python bench/ingest.py [--steps 100,250,500,1000,1500] [--duration 8] [--out bench/results/ingest.json]
        [--recordings-url s3://bucket/prefix]   # with AWS_ENDPOINT_URL_S3 etc. exported
        [--overlap]   # each step's calls hang up during the next step's media (uploads meanwhile)
        [--workers N]   # INGEST_WORKERS=N: N worker processes on every core (the workers dimension)

- **media_ingest** runs as production runs it (``voicetap ingest``, uvloop) with its own throwaway
  Redis (the embedded Valkey), ``INGEST_MODE=off`` and a large ``INGEST_RTP_PORTS`` range; for each
  step, N calls are created in the simulator's fake Telnyx API (served by this script) and their
  ports allocated through the real path: ``fork_start`` commands without ``rx``/``tx`` on
  ``voicetap.command.media``, executed through the telnyx SDK against the fake API, the allocated
  ports read from ``voicetap.command.result``. After the step every call is hung up
  (``call.hangup`` on its topic) so that the next step starts from none.
- **baseline** (``bench/baseline_ingest.py``): one ``asyncio.DatagramProtocol`` per port on the
  default asyncio loop, ``struct`` parse, numpy G.711 decode per packet, a WAV per leg.

Load: ``bench/rtp_load.py`` processes (one per 500 calls) send 20 ms PCMU packets on both legs of
every call for ``--duration`` seconds (100,000 packets/s at 1,000 calls). A step has no loss when
the receiver counted every packet sent (media_ingest: its own ``voicetap_ingest_packets_total``;
the baseline: its counters) and its loss counter (sequence gaps) did not move. Stepping stops at
the first step with loss. The server is pinned to one core; load generators, Redis and this script
share the other. With ``--workers N`` (N > 1) the ingest runs N worker processes and nothing is
pinned: the workers, the load generators and Redis share every core, and what isolates the ingest
is its CPU per call-second (the whole process tree's, so the supervisor and every worker), to set
against one worker's (linear scaling keeps it), and the most calls with zero loss.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from harness.machine import (
    CpuPlan,
    cpu_busy_between,
    cpu_ticks,
    git_revision,
    load_average,
    machine_info,
    package_versions,
    tool_version,
)
from harness.procs import ServerProcess, _status_kib
from harness.report import markdown_table, write_json
from redis import Redis

from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.payloads import event as webhook_event
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState
from voicetap_cli.embedded_redis import EmbeddedRedis, free_port, server_binary
from voicetap_sdk import codec
from voicetap_sdk.streams import entry_fields
from voicetap_sdk.topics import COMMAND_RESULTS, MEDIA_COMMANDS, telnyx_topic

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.prefix) / "bin"
HOST = "127.0.0.1"
API_KEY = "KEYbench_ingest"
TARGET_CALLS = 1000
CALLS_PER_SENDER = 500
OVERLAP_HANGUP_S = 2.0  # --overlap: into a step's media, the previous step's calls hang up


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class FakeApi:
    """The simulator's fake Telnyx API, served from a thread of this script."""

    def __init__(self) -> None:
        self.state = FakeTelnyxState(API_KEY)
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        async with serve(create_fake_api(self.state)) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("fake Telnyx API did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped for full socket buffers, machine-wide (/proc/net/snmp Udp: RcvbufErrors)."""
    lines = [
        ln.split()
        for ln in Path("/proc/net/snmp").read_text().splitlines()
        if ln.startswith("Udp:")
    ]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def ingest_metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("voicetap_ingest_") and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def allocate(
    redis: Redis, fake: FakeApi, calls: int, timeout: float = 120
) -> tuple[list[str], list[list[int]]]:
    """``calls`` fork_start commands through the real path; the call ids and their [rx, tx] ports."""
    ids = [fake.state.create_call().call_control_id for _ in range(calls)]
    start_id = redis.xadd(COMMAND_RESULTS, {"marker": "1"}) if True else None
    pipe = redis.pipeline(transaction=False)
    commands = {}
    for ccid in ids:
        command_id = f"bench-fork-{uuid.uuid4()}"
        commands[command_id] = ccid
        body = codec.dumps({"id": command_id, "action": "fork_start", "call_control_id": ccid})
        pipe.xadd(
            MEDIA_COMMANDS, entry_fields(command_id, "fork_start", body, call_control_id=ccid)
        )
    pipe.execute()
    ports: dict[str, list[int]] = {}
    deadline, last = time.monotonic() + timeout, start_id
    while len(ports) < calls and time.monotonic() < deadline:
        for _, items in redis.xread({COMMAND_RESULTS: last}, count=5000, block=500) or []:
            for entry_id, fields in items:
                last = entry_id
                if b"event" not in fields:
                    continue
                result = codec.loads(fields[b"event"])
                ccid = commands.get(result.get("command_id"))
                if ccid is None:
                    continue
                if not result.get("ok"):
                    raise RuntimeError(f"fork_start failed: {result}")
                allocated = result["allocated"]
                ports[ccid] = [
                    int(allocated["rx"].rsplit(":", 1)[1]),
                    int(allocated["tx"].rsplit(":", 1)[1]),
                ]
    if len(ports) < calls:
        raise RuntimeError(f"only {len(ports)} of {calls} forks started within {timeout} s")
    return ids, [ports[c] for c in ids]


def hang_up(redis: Redis, ids: list[str]) -> None:
    pipe = redis.pipeline(transaction=False)
    for ccid in ids:
        data = webhook_event(
            "call.hangup",
            {"call_control_id": ccid, "hangup_cause": "normal_clearing", "hangup_source": "caller"},
            datetime.now(UTC),
        )
        body = codec.dumps(
            {"data": data, "meta": {"attempt": 1, "delivered_to": "http://bench/webhooks"}}
        )
        pipe.xadd(
            telnyx_topic("call.hangup"),
            entry_fields(data["id"], "call.hangup", body, call_control_id=ccid),
        )
    pipe.execute()


def send_load(
    targets: list[list[int]], duration: float, workdir: Path, cpus: CpuPlan, tag: str
) -> dict[str, object]:
    path = workdir / f"targets-{tag}.json"
    path.write_text(json.dumps(targets))
    senders = max(1, -(-len(targets) // CALLS_PER_SENDER))
    start_at = time.time() + 0.5
    procs = []
    for i in range(senders):
        first = i * CALLS_PER_SENDER
        out = workdir / f"load-{tag}-{i}.json"
        argv = [
            *cpus.prefix(cpus.load_cpus),
            sys.executable,
            str(BENCH_DIR / "rtp_load.py"),
            "--targets",
            str(path),
            "--first",
            str(first),
            "--count",
            str(min(CALLS_PER_SENDER, len(targets) - first)),
            "--duration",
            f"{duration:g}",
            "--start-at",
            f"{start_at:.3f}",
            "--out",
            str(out),
        ]
        procs.append((subprocess.Popen(argv), out))
    parts = []
    for proc, out in procs:
        if proc.wait(duration + 60) != 0:
            raise RuntimeError("load generator failed")
        parts.append(json.loads(out.read_text()))
    return {
        "senders": senders,
        "packets_sent": sum(p["packets_sent"] for p in parts),
        "send_errors": sum(p["send_errors"] for p in parts),
        "late_ticks": sum(p["late_ticks"] for p in parts),
        "max_tick_lag_ms": max(p["max_tick_lag_ms"] for p in parts),
        "send_busy_share": [p["send_busy_share"] for p in parts],
    }


def recordings_env(url: str | None) -> dict[str, str]:
    """Where the ingest stores recordings: ``--recordings-url`` and the ``AWS_*`` variables of
    this script's environment (default: the file store under the ingest's data directory)."""
    if not url:
        return {}
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return {"VOICETAP_RECORDINGS_URL": url, **aws}


def wait_no_calls(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (
        ingest_metrics(port).get("voicetap_ingest_active_calls", 0) > 0
        and time.monotonic() < deadline
    ):
        time.sleep(0.3)


def wait_spool_empty(port: int, timeout: float = 600) -> float | None:
    """Seconds until every finished recording was uploaded (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ingest_metrics(port).get("voicetap_ingest_recordings_spooled", 0) == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS") or 0


def step_result(
    calls: int,
    duration: float,
    load: dict,
    received: float,
    lost: float,
    cpu_s: float,
    rss_before: int,
    rss_after: int,
    busy: dict,
    kernel_drops: int,
    extra: dict,
) -> dict[str, object]:
    sent = int(load["packets_sent"])
    clean = lost == 0 and int(received) == sent and load["send_errors"] == 0
    return {
        "calls": calls,
        "packets_per_s_offered": round(sent / duration),
        **load,
        "packets_received": int(received),
        "packets_lost": int(lost),
        "missing": sent - int(received),
        "zero_loss": clean,
        "server_cpu_utilisation": round(cpu_s / duration, 3),
        "cpu_ms_per_call_second": round(cpu_s / duration / calls * 1000, 3),
        "rss_mib": round(rss_after / 1024, 1),
        "rss_kib_per_call": round((rss_after - rss_before) / calls, 1),
        "kernel_udp_rcvbuf_errors": kernel_drops,
        "core_busy_share": busy,
        **extra,
    }


def bench_ingest(
    args: argparse.Namespace,
    redis: Redis,
    redis_url: str,
    fake: FakeApi,
    workdir: Path,
    cpus: CpuPlan,
) -> dict[str, object]:
    port = free_port()
    first_port = args.ingest_ports
    max_calls = max(args.steps)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "REDIS_URL": redis_url,
        "VOICETAP_DATA_DIR": str(workdir / "ingest-data"),
        "LOG_LEVEL": "WARNING",
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake.url}/v2",
        "TELNYX_MAX_RETRIES": "0",
        "INGEST_MODE": "off",
        "INGEST_HOST": HOST,
        "INGEST_PORT": str(port),
        "INGEST_RTP_HOST": HOST,
        "INGEST_PUBLIC_HOST": HOST,
        # --overlap: two steps' calls hold ports at once
        # (workers: each takes the calls it reads first, so each share gets room for all of them)
        "INGEST_RTP_PORTS": f"{first_port}-{first_port + (4 if args.overlap else 2) * max_calls * args.workers + 1}",
        "INGEST_MEDIA_TIMEOUT_SECONDS": "600",
        "INGEST_PORT_LEASE_SECONDS": "120",
        "INGEST_WORKERS": str(args.workers),
        **recordings_env(args.recordings_url),
    }
    server = ServerProcess(
        "ingest",
        [*cpus.prefix(cpus.server_cpus), str(VENV_BIN / "voicetap"), "ingest"],
        env,
        workdir,
        workdir / "ingest.log",
    )
    server.start()
    steps = []
    try:
        server.wait_ready(HOST, port)
        rss_idle = rss_kib(server.pid)
        previous: list[
            str
        ] = []  # --overlap: the last step's calls, hung up during this one's media
        for calls in args.steps:
            log(f"media_ingest: {calls} calls: allocating through fork_start")
            ids, targets = allocate(redis, fake, calls)
            time.sleep(1.0)
            rss_before = rss_kib(server.pid)
            before, drops_before = ingest_metrics(port), udp_rcvbuf_errors()
            spooled_at_start = before.get("voicetap_ingest_recordings_spooled", 0)
            cpu_before, ticks_before = server.cpu_seconds(), cpu_ticks()
            hang_up_previous = threading.Timer(OVERLAP_HANGUP_S, hang_up, (redis, previous))
            if previous:
                hang_up_previous.start()
            load = send_load(targets, args.duration, workdir, cpus, f"ingest-{calls}")
            if previous:
                hang_up_previous.join()
            at_load_end = ingest_metrics(port)
            cpu_s, busy = (
                server.cpu_seconds() - cpu_before,
                cpu_busy_between(ticks_before, cpu_ticks()),
            )
            rss_after = rss_kib(server.pid)
            time.sleep(1.5)  # the jitter buffers drain; late packets are counted
            after = ingest_metrics(port)
            d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            result = step_result(
                calls,
                args.duration,
                load,
                d.get("voicetap_ingest_packets_total", 0),
                d.get("voicetap_ingest_packets_lost_total", 0),
                cpu_s,
                rss_idle,
                rss_after,
                busy,
                udp_rcvbuf_errors() - drops_before,
                {
                    "late": d.get("voicetap_ingest_packets_late_total", 0),
                    "duplicated": d.get("voicetap_ingest_packets_duplicated_total", 0),
                    "reordered": d.get("voicetap_ingest_packets_reordered_total", 0),
                    "decode_errors": d.get("voicetap_ingest_decode_errors_total", 0),
                    "events_dropped": d.get("voicetap_ingest_events_dropped_total", 0),
                    "rss_kib_allocated_before_media": rss_before - rss_idle,
                    # the previous step's recordings still being uploaded while this one's media ran
                    "recordings_spooled_at_load_start": int(spooled_at_start),
                    "recordings_spooled_at_load_end": int(
                        at_load_end.get("voicetap_ingest_recordings_spooled", 0)
                    ),
                    "recordings_stored_during_load": int(
                        at_load_end.get("voicetap_ingest_recordings_stored_total", 0)
                        - before.get("voicetap_ingest_recordings_stored_total", 0)
                    ),
                },
            )
            steps.append(result)
            log(
                f"media_ingest: {calls} calls: sent {result['packets_sent']:,}, received {result['packets_received']:,}, "
                f"lost {result['packets_lost']}, CPU {result['server_cpu_utilisation']:.0%}, zero loss: {result['zero_loss']}"
            )
            if args.overlap:
                previous = ids
            else:
                hang_up(redis, ids)
                wait_no_calls(port)
            if not result["zero_loss"]:
                break
        hang_up(redis, previous)
        wait_no_calls(port)
        stored_s = wait_spool_empty(port)
        memory = server.memory()
    finally:
        server.stop()
    return {
        "title": "voicetap media_ingest"
        + (f", {args.workers} workers" if args.workers > 1 else ""),
        "command": f"voicetap ingest (INGEST_MODE=off, INGEST_WORKERS={args.workers})",
        "workers": args.workers,
        "steps": steps,
        "memory": memory,
        "rss_idle_mib": round(rss_idle / 1024, 1),
        "recordings_url": args.recordings_url or "file:// (VOICETAP_DATA_DIR/recordings)",
        "recordings_stored_after_last_step_s": stored_s,
    }


def bench_baseline(args: argparse.Namespace, workdir: Path, cpus: CpuPlan) -> dict[str, object]:
    first_port = args.baseline_ports
    max_calls = max(args.steps)
    stats = workdir / "baseline-stats.json"
    argv = [
        *cpus.prefix(cpus.server_cpus),
        sys.executable,
        str(BENCH_DIR / "baseline_ingest.py"),
        "--ports",
        f"{first_port}-{first_port + 2 * max_calls - 1}",
        "--dir",
        str(workdir / "baseline-wav"),
        "--stats",
        str(stats),
    ]
    server = ServerProcess("baseline", argv, {**os.environ}, workdir, workdir / "baseline.log")
    server.start()
    steps = []
    try:
        deadline = time.monotonic() + 60
        while not stats.with_suffix(".ready").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"baseline did not start:\n{server.log_tail()}")
            time.sleep(0.1)
        time.sleep(0.6)
        rss_idle = rss_kib(server.pid)
        for calls in args.steps:
            targets = [[first_port + 2 * i, first_port + 2 * i + 1] for i in range(calls)]
            before, drops_before = json.loads(stats.read_text()), udp_rcvbuf_errors()
            cpu_before, ticks_before = server.cpu_seconds(), cpu_ticks()
            load = send_load(targets, args.duration, workdir, cpus, f"baseline-{calls}")
            cpu_s, busy = (
                server.cpu_seconds() - cpu_before,
                cpu_busy_between(ticks_before, cpu_ticks()),
            )
            rss_after = rss_kib(server.pid)
            time.sleep(1.5)
            after = json.loads(stats.read_text())
            result = step_result(
                calls,
                args.duration,
                load,
                after["received"] - before["received"],
                after["lost"] - before["lost"],
                cpu_s,
                rss_idle,
                rss_after,
                busy,
                udp_rcvbuf_errors() - drops_before,
                {},
            )
            steps.append(result)
            log(
                f"baseline: {calls} calls: sent {result['packets_sent']:,}, received {result['packets_received']:,}, "
                f"lost {result['packets_lost']}, CPU {result['server_cpu_utilisation']:.0%}, zero loss: {result['zero_loss']}"
            )
            time.sleep(
                1.0
            )  # the next step's legs start new sequences on the ports used before: gaps there are not loss
            if not result["zero_loss"]:
                break
        memory = server.memory()
    finally:
        server.stop()
    return {
        "title": "baseline (asyncio loop, per-packet struct + numpy decode)",
        "command": " ".join(argv[len(cpus.prefix(cpus.server_cpus)) :]),
        "steps": steps,
        "memory": memory,
        "rss_idle_mib": round(rss_idle / 1024, 1),
    }


def render(document: dict) -> str:
    header = [
        "implementation",
        "calls",
        "packets/s sent",
        "received / sent",
        "lost",
        "server CPU",
        "CPU per call (ms/s)",
        "RSS (MiB)",
        "RSS per call (KiB)",
        "zero loss",
    ]
    rows = []
    for result in document["results"].values():
        for s in result["steps"]:
            rows.append(
                [
                    result["title"],
                    f"{s['calls']:,}",
                    f"{s['packets_per_s_offered']:,}",
                    f"{s['packets_received']:,} / {s['packets_sent']:,}",
                    f"{s['packets_lost']:,}",
                    f"{s['server_cpu_utilisation']:.0%}",
                    f"{s['cpu_ms_per_call_second']:.2f}",
                    f"{s['rss_mib']:.0f}",
                    f"{s['rss_kib_per_call']:.0f}",
                    "yes" if s["zero_loss"] else "**no**",
                ]
            )
    lines = [markdown_table(header, rows)]
    ev = document["evaluation"]
    lines.append(
        "\n"
        + markdown_table(
            [
                "implementation",
                "most calls with zero loss (steps tried)",
                f"target {TARGET_CALLS:,} calls met",
            ],
            [
                [k, f"{v['max_zero_loss_calls']:,}", "yes" if v["met"] else "**no**"]
                for k, v in ev.items()
            ],
        )
    )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 250, 500, 1000, 1500],
    )
    parser.add_argument(
        "--duration", type=float, default=8, help="seconds of media per step (default 8)"
    )
    parser.add_argument("--only", choices=["ingest", "baseline"])
    parser.add_argument(
        "--ingest-ports", type=int, default=42000, help="first UDP port of media_ingest's range"
    )
    parser.add_argument(
        "--baseline-ports", type=int, default=46000, help="first UDP port of the baseline's range"
    )
    parser.add_argument("--server-cpus")
    parser.add_argument("--load-cpus")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "ingest.json")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument(
        "--recordings-url",
        help="VOICETAP_RECORDINGS_URL of the ingest (e.g. s3://bucket/prefix, with AWS_* exported); "
        "each step's recordings are uploaded while the next step's media runs",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="INGEST_WORKERS of the ingest; above 1 nothing is pinned (the workers dimension)",
    )
    parser.add_argument(
        "--overlap",
        action="store_true",
        help=f"keep each step's calls until {OVERLAP_HANGUP_S:g} s into the next step's media, then hang "
        "them up: their recordings finish and upload while the next step's calls run",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    machine = machine_info()
    cpus = (
        CpuPlan.choose(args.server_cpus, args.load_cpus)
        if args.workers == 1
        else CpuPlan.everywhere()
    )
    cpus.pin_self_to_load_cpus()
    workdir = Path(tempfile.mkdtemp(prefix="voicetap-bench-ingest-"))
    started = time.time()
    redis_server = EmbeddedRedis(workdir / "redis")
    redis_server.start()
    fake = FakeApi()
    fake.start()
    results: dict[str, dict] = {}
    try:
        redis = Redis.from_url(redis_server.url, socket_timeout=60)
        if args.only != "baseline":
            results["ingest"] = bench_ingest(args, redis, redis_server.url, fake, workdir, cpus)
        if args.only != "ingest":
            results["baseline"] = bench_baseline(args, workdir, cpus)
        redis.close()
    finally:
        fake.stop()
        redis_server.stop()
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    evaluation = {}
    for result in results.values():
        best = max((s["calls"] for s in result["steps"] if s["zero_loss"]), default=0)
        evaluation[result["title"]] = {
            "max_zero_loss_calls": best,
            "steps_tried": [s["calls"] for s in result["steps"]],
            "met": best >= TARGET_CALLS,
        }
    document = {
        "benchmark": "media ingest: concurrent forked two-leg PCMU calls (20 ms RTP over loopback UDP) into one process",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine,
        "software": {
            "redis_server": f"valkey ({server_binary().name})",
            "taskset": tool_version(["taskset", "--version"]),
            "packages": package_versions(["uvloop", "numpy", "redis", "telnyx", "uvicorn"]),
            "repository": git_revision(REPO),
        },
        "cpu_pinning": cpus.as_json(),
        "parameters": {
            "steps": args.steps,
            "duration_s": args.duration,
            "calls_per_sender_process": CALLS_PER_SENDER,
            "packets": "RTP v2, PT 0 (PCMU), 160-byte payload (20 ms), both legs of every call, 50 packets/s per leg",
            "recordings_url": args.recordings_url,
            "overlap": args.overlap,
            "workers": args.workers,
        },
        "results": results,
        "evaluation": evaluation,
        "load_average_at_end": load_average(),
    }
    document["markdown"] = render(document)
    write_json(args.out, document)
    print(document["markdown"])
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
