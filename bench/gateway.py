"""Benchmark: the voicetap webhook gateway against the seed docs' baseline, same run, same machine.

    .venv/bin/python bench/gateway.py [--duration S] [--connections N] [--out bench/results/gateway.json]

One throwaway Redis (the embedded Valkey, append-only like production) serves both, one after the
other:

- ``voicetap gateway``, exactly as production runs it (one process: uvicorn, uvloop, httptools);
- the same with ``GATEWAY_WORKERS=2`` (two processes sharing the port), on every core, so the
  load generator and Redis share them with it: the workers dimension (stored webhooks/s against
  one worker's; wanted: 1.7x on two cores);
- ``bench/baseline_gateway.py``: Flask + the SDK's ``webhooks.unwrap`` + redis-py ``XADD``,
  gunicorn with one sync worker.

For each: a warm-up, then saturation with wrk (N keep-alive connections, distinct signed webhooks,
each sent once), then latency at a fixed rate with an open-loop generator; peak RSS of the server;
and a check that every acknowledged webhook is in Redis exactly once. The server runs on a core of
its own; the load generator, Redis and this script share the other. Results go to ``--out`` as
JSON; a Markdown table for the README is printed. See ``bench/README.md``.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness import openloop, profile, redis_check
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
from harness.procs import ServerProcess
from harness.report import fmt_ms, markdown_table, write_json
from harness.requestfile import write_parts
from harness.wrk import require_wrk, run_wrk, wrk_version
from nacl.signing import SigningKey
from redis import Redis
from webhooks import WebhookFactory

from voicetap_cli.embedded_redis import EmbeddedRedis, free_port, server_binary

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.prefix) / "bin"
TOPICS = "telnyx.*"
HOST = "127.0.0.1"
WRK_TIMEOUT_S = 2.0  # Telnyx gives up on an answer after 2 s: a slower answer is a failed delivery
WARMUP_CAP_RATE = 15_000  # requests/s the warm-up pool is sized for; the saturation pool follows the warm-up's rate
TARGETS = {"stored_per_s": 5_000, "ratio": 3.0, "p99_ms_at_rate": 10.0, "workers_ratio": 1.7}


@dataclass(frozen=True)
class Implementation:
    key: str
    title: str
    description: str
    port: int
    argv: list[str]
    env: dict[str, str]
    every_core: bool = False  # not pinned: a multi-process server is measured on the whole machine


def implementations(redis_url: str, public_key: str) -> list[Implementation]:
    gateway_port, baseline_port, workers_port = free_port(), free_port(), free_port()
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    return [
        Implementation(
            key="gateway",
            title="voicetap gateway",
            description="`voicetap gateway`: Starlette + uvicorn (uvloop, httptools), PyNaCl, batched Lua publish; one process",
            port=gateway_port,
            argv=[str(VENV_BIN / "voicetap"), "gateway"],
            env={
                **base_env,
                "REDIS_URL": redis_url,
                "TELNYX_PUBLIC_KEY": public_key,
                "GATEWAY_HOST": HOST,
                "GATEWAY_PORT": str(gateway_port),
                "LOG_LEVEL": "WARNING",
            },
        ),
        Implementation(
            key="gateway_w2",
            title="voicetap gateway, 2 workers",
            description="`GATEWAY_WORKERS=2 voicetap gateway`: two processes sharing the port, on every core (the load generator and Redis share them)",
            port=workers_port,
            argv=[str(VENV_BIN / "voicetap"), "gateway"],
            env={
                **base_env,
                "REDIS_URL": redis_url,
                "TELNYX_PUBLIC_KEY": public_key,
                "GATEWAY_HOST": HOST,
                "GATEWAY_PORT": str(workers_port),
                "GATEWAY_WORKERS": "2",
                "LOG_LEVEL": "WARNING",
            },
            every_core=True,
        ),
        Implementation(
            key="baseline",
            title="baseline (seed docs' way)",
            description="Flask + SDK `webhooks.unwrap` + redis-py `XADD`; gunicorn, 1 sync worker (bench/baseline_gateway.py)",
            port=baseline_port,
            argv=[
                str(VENV_BIN / "gunicorn"),
                "--workers",
                "1",
                "--worker-class",
                "sync",
                "--bind",
                f"{HOST}:{baseline_port}",
                "--chdir",
                str(BENCH_DIR),
                "--log-level",
                "warning",
                "baseline_gateway:create_app()",
            ],
            env={**base_env, "REDIS_URL": redis_url, "TELNYX_PUBLIC_KEY": public_key},
        ),
    ]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _server_histogram(port: int) -> dict[str, float]:
    """The gateway's own ``voicetap_gateway_request_seconds`` buckets (arrival to answer, in-process)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("voicetap_gateway_request_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


def _histogram_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, object]:
    """How the gateway itself timed the fixed-rate requests: share answered within each bound.

    Separates the server's latency from what the network stack, a busy load-generator core or
    other users of the machine add on the way."""
    total = after.get("+Inf", 0) - before.get("+Inf", 0)
    within = {
        f"le_{le}s": round((after[le] - before.get(le, 0)) / total, 4)
        for le in after
        if le != "+Inf" and total
    }
    return {"requests": int(total), "share_answered_within": within}


def saturation_summary(
    run: dict[str, object], stored: int, duration_s: float, cpu_s: float
) -> dict[str, object]:
    latency = run["latency_us"]
    errors = run["errors"]
    statuses = run["statuses"]
    non_2xx = sum(v for k, v in statuses.items() if not 200 <= int(k) < 300)  # type: ignore[union-attr]
    return {
        "duration_s": round(duration_s, 3),
        "requests": run["requests"],
        "requests_per_s": round(int(run["requests"]) / duration_s, 1),  # type: ignore[call-overload]
        "stored_per_s": round(stored / duration_s, 1),
        "acknowledged_2xx": run["acked"],
        "non_2xx": non_2xx,
        "socket_errors": {k: v for k, v in errors.items() if k != "status"},  # type: ignore[union-attr]
        "statuses": statuses,
        "latency_ms": {k: round(v / 1000, 3) for k, v in latency.items()},  # type: ignore[union-attr]
        "server_cpu_s": round(cpu_s, 2),
        "stored_per_server_cpu_s": round(stored / cpu_s, 1) if cpu_s else None,
        "server_cpu_utilisation": round(cpu_s / duration_s, 2),
        "wrk_command": run["command"],
    }


def bench_one(
    impl: Implementation,
    *,
    redis: Redis,
    factory: WebhookFactory,
    cpus: CpuPlan,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, object]:
    redis.flushall()
    port = impl.port
    server = ServerProcess(
        impl.key,
        [*([] if impl.every_core else cpus.prefix(cpus.server_cpus)), *impl.argv],
        impl.env,
        workdir,
        workdir / f"{impl.key}.log",
    )
    url = f"http://{HOST}:{port}/webhooks/telnyx"
    phases: dict[str, tuple[set[str], list[str], int]] = {}
    result: dict[str, object] = {
        "title": impl.title,
        "description": impl.description,
        "command": " ".join(impl.argv).replace(str(VENV_BIN) + "/", ".venv/bin/"),
        "load_average_before": load_average(),
    }
    log(f"{impl.title}: starting")
    server.start()
    try:
        result["ready_after_s"] = round(server.wait_ready(HOST, port), 2)

        def saturate(name: str, count: int, duration_s: float) -> tuple[dict[str, object], float]:
            batch = factory.signed_requests(count, HOST, port)
            prefix = workdir / f"{impl.key}-{name}"
            write_parts(prefix.with_name(prefix.name + ".req"), batch.requests, args.threads)
            sampler = None
            if args.profile and name.startswith("saturation"):
                profile_path = (
                    args.out.parent / "profiles" / f"{args.out.stem}-{impl.key}.collapsed"
                )
                profile_path.parent.mkdir(parents=True, exist_ok=True)
                sampler = profile.start(
                    args.profile, server.pid, duration_s - 1, profile_path, cpus
                )
            cpu_before, ticks_before, redis_cpu_before = (
                server.cpu_seconds(),
                cpu_ticks(),
                _redis_cpu(redis),
            )
            run = run_wrk(
                url,
                requests_prefix=prefix.with_name(prefix.name + ".req"),
                acks_prefix=prefix.with_name(prefix.name + ".ack"),
                threads=args.threads,
                connections=args.connections,
                duration_s=duration_s,
                timeout_s=WRK_TIMEOUT_S,
                cpus=cpus,
            )
            cpu_s = server.cpu_seconds() - cpu_before
            core_busy, redis_cpu_s = (
                cpu_busy_between(ticks_before, cpu_ticks()),
                _redis_cpu(redis) - redis_cpu_before,
            )
            if sampler is not None:
                sampler.wait(30)
                result["profile"] = {
                    "file": str(
                        profile_path.relative_to(REPO)
                        if profile_path.is_relative_to(REPO)
                        else profile_path
                    ),
                    **profile.summarise(profile_path, int(250 * max(1, int(duration_s - 1)))),
                }
            phases[name] = (batch.ids, run.acked_ids, args.connections)
            result["mean_body_bytes"] = round(batch.mean_body_bytes, 1)
            rate = len(run.acked_ids) / run.duration_s
            log(
                f"{impl.title}: {name}: {rate:,.0f} stored/s, p99 {int(run.raw['latency_us']['p99']) / 1000:.2f} ms"  # type: ignore[index]
                + (" (ran out of pre-signed requests: discarded)" if run.exhausted else "")
            )
            summary = saturation_summary(run.raw, len(run.acked_ids), run.duration_s, cpu_s)
            summary["redis_cpu_utilisation"] = round(redis_cpu_s / run.duration_s, 2)
            summary["core_busy_share"] = (
                core_busy  # every process on the machine, other users' included
            )
            summary["exhausted_pool"] = run.exhausted
            summary["pool"] = count
            return summary, rate

        warm, rate = saturate("warmup", int(args.warmup * WARMUP_CAP_RATE), args.warmup)
        result["warmup"] = {
            k: warm[k]
            for k in ("duration_s", "requests_per_s", "stored_per_s", "non_2xx", "exhausted_pool")
        }

        pool = int(max(rate, 500) * args.duration * 1.5) + 2_000
        for attempt in range(3):
            name = "saturation" if attempt == 0 else f"saturation_retry{attempt}"
            saturation, _ = saturate(name, pool, args.duration)
            if not saturation["exhausted_pool"]:
                break
            pool *= 2
        else:
            raise RuntimeError("the load generator kept running out of pre-signed requests")
        saturation["connections"] = args.connections
        saturation["wrk_threads"] = args.threads
        saturation["wrk_timeout_s"] = WRK_TIMEOUT_S
        result["saturation"] = saturation
        redis_check.wait_quiet(redis, TOPICS)

        histogram_before = _server_histogram(port) if impl.key == "gateway" else None
        count = int(args.rate * args.rate_duration)
        batch = factory.signed_requests(count, HOST, port)
        requests_path = workdir / f"{impl.key}-rate.req"
        write_parts(requests_path, batch.requests, 1)
        fixed = openloop.run_process(
            sys.executable,
            port=port,
            requests_path=requests_path.with_name(requests_path.name + ".0"),
            count=count,
            rate=args.rate,
            connections=args.rate_connections,
            out_path=workdir / f"{impl.key}-rate.json",
            cpus=cpus,
        )
        acked = fixed.pop("acked_ids")
        phases["fixed_rate"] = (
            batch.ids,
            acked,
            0,
        )  # open loop waits for every answer: nothing in flight at the end
        fixed["non_2xx"] = sum(v for k, v in fixed["statuses"].items() if not 200 <= int(k) < 300)  # type: ignore[union-attr]
        if histogram_before is not None:
            fixed["server_side"] = _histogram_delta(histogram_before, _server_histogram(port))
        result["fixed_rate"] = fixed
        log(
            f"{impl.title}: {args.rate:g} req/s: p50 {fixed['latency_ms'].get('p50')} ms, p99 {fixed['latency_ms'].get('p99')} ms"
        )  # type: ignore[union-attr]

        redis_check.wait_quiet(redis, TOPICS)
        result["memory"] = server.memory()
        result["redis_check"] = redis_check.verify(redis, TOPICS, phases)
        log(
            f"{impl.title}: every acknowledged webhook stored once: {result['redis_check']['all_acknowledged_stored_once']}"
        )  # type: ignore[index]
    finally:
        server.stop()
    return result


def evaluate(results: dict[str, dict[str, object]]) -> dict[str, object]:
    gateway, baseline = results.get("gateway"), results.get("baseline")
    evaluation: dict[str, object] = {}
    if gateway:
        stored = gateway["saturation"]["stored_per_s"]  # type: ignore[index]
        intact = gateway["redis_check"]["all_acknowledged_stored_once"]  # type: ignore[index]
        p99 = gateway["fixed_rate"]["latency_ms"].get("p99")  # type: ignore[index]
        rate_clean = gateway["fixed_rate"]["non_2xx"] == 0 and not gateway["fixed_rate"]["errors"]  # type: ignore[index]
        evaluation["stored_per_s"] = {
            "target": f">= {TARGETS['stored_per_s']}",
            "value": stored,
            "met": bool(intact and stored >= TARGETS["stored_per_s"]),
        }
        evaluation["p99_ms_at_rate"] = {
            "target": f"< {TARGETS['p99_ms_at_rate']} ms",
            "value": p99,
            "met": bool(p99 is not None and rate_clean and p99 < TARGETS["p99_ms_at_rate"]),
        }
    workers = results.get("gateway_w2")
    if gateway and workers:
        ratio = workers["saturation"]["stored_per_s"] / max(
            gateway["saturation"]["stored_per_s"], 1e-9
        )  # type: ignore[index, operator]
        evaluation["workers_ratio"] = {
            "target": f">= {TARGETS['workers_ratio']:g}x",
            "value": round(ratio, 2),
            "met": bool(
                workers["redis_check"]["all_acknowledged_stored_once"]  # type: ignore[index]
                and ratio >= TARGETS["workers_ratio"]
            ),
        }
    if gateway and baseline:
        ratio = gateway["saturation"]["stored_per_s"] / max(
            baseline["saturation"]["stored_per_s"], 1e-9
        )  # type: ignore[index, operator]
        evaluation["ratio"] = {
            "target": f">= {TARGETS['ratio']:g}x",
            "value": round(ratio, 2),
            "met": ratio >= TARGETS["ratio"],
        }
    return evaluation


def render(document: dict[str, object]) -> str:
    params = document["parameters"]
    results: dict[str, dict] = document["results"]  # type: ignore[assignment]
    header = [
        "implementation",
        f"stored webhooks/s ({params['connections']} conn.)",
        "p50 / p99 at saturation",  # type: ignore[index]
        f"p50 / p99 at {params['rate']:,.0f} req/s",
        "server CPU at saturation (stored per CPU-second)",
        "peak RSS",
        "non-2xx / socket errors",
        "every 2xx stored once",  # type: ignore[index]
    ]
    rows = []
    for result in results.values():
        sat, fixed = result["saturation"], result["fixed_rate"]
        socket_errors = sum(sat["socket_errors"].values()) + sum(fixed["errors"].values())
        achieved = (
            ""
            if fixed["achieved_rate"] >= 0.98 * params["rate"]
            else f" (served {fixed['achieved_rate']:,.0f}/s)"
        )  # type: ignore[index]
        rows.append(
            [
                result["title"],
                f"{sat['stored_per_s']:,.0f}",
                f"{fmt_ms(sat['latency_ms']['p50'])} / {fmt_ms(sat['latency_ms']['p99'])}",
                f"{fmt_ms(fixed['latency_ms'].get('p50'))} / {fmt_ms(fixed['latency_ms'].get('p99'))}{achieved}",
                f"{sat['server_cpu_utilisation']:.0%} of a core ({sat['stored_per_s'] / max(sat['server_cpu_utilisation'], 1e-9):,.0f})",
                f"{result['memory']['peak_rss_mib_total']:.0f} MiB",
                f"{sat['non_2xx'] + fixed['non_2xx']} / {socket_errors}",
                "yes" if result["redis_check"]["all_acknowledged_stored_once"] else "**NO**",
            ]
        )
    lines = [markdown_table(header, rows)]
    evaluation: dict[str, dict] = document["evaluation"]  # type: ignore[assignment]
    if "ratio" in evaluation:
        lines.append(
            f"\nGateway / baseline: **{evaluation['ratio']['value']:.1f}x** stored webhooks/s."
        )
    if evaluation:
        names = {
            "stored_per_s": "verified + stored webhooks/s, one gateway process",
            "ratio": "throughput vs baseline",
            "workers_ratio": "2 workers vs 1 (GATEWAY_WORKERS), 2 cores shared with wrk and Redis",
            "p99_ms_at_rate": f"gateway p99 at {params['rate']:,.0f} req/s",
        }  # type: ignore[index]
        lines.append(
            "\n"
            + markdown_table(
                ["target", "wanted", "measured", "met"],
                [
                    [names[k], v["target"], str(v["value"]), "yes" if v["met"] else "**no**"]
                    for k, v in evaluation.items()
                ],
            )
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=15,
        help="seconds of saturation per implementation (default 15)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=64,
        help="keep-alive connections at saturation (default 64)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3,
        help="seconds of warm-up at saturation, not reported (default 3)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000,
        help="fixed request rate for the latency run (default 1000/s)",
    )
    parser.add_argument(
        "--rate-duration", type=float, default=10, help="seconds at the fixed rate (default 10)"
    )
    parser.add_argument(
        "--rate-connections",
        type=int,
        default=32,
        help="connection pool of the fixed-rate generator (default 32)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="wrk threads (default 1: the load generator has one core)",
    )
    parser.add_argument(
        "--only",
        choices=["gateway", "gateway_w2", "baseline"],
        help="run one implementation only",
    )
    parser.add_argument(
        "--server-cpus", help="cores for the server under test (default: the first one)"
    )
    parser.add_argument(
        "--load-cpus",
        help="cores for the load generator, Redis and this script (default: the others)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "gateway.json")
    parser.add_argument(
        "--no-appendonly",
        action="store_true",
        help="diagnosis only: Redis without its append-only file",
    )
    parser.add_argument(
        "--profile",
        action="store_const",
        const=profile.find_py_spy(),
        default=None,
        help="sample each server with py-spy during saturation (py-spy on PATH or in /tmp/pyspy/bin)",
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep request files, server logs and Redis data"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    require_wrk()
    if "--profile" in sys.argv and args.profile is None:
        sys.exit("bench: --profile needs py-spy: pip install --target /tmp/pyspy py-spy")
    machine = machine_info()  # before pinning: it records the cores this machine offers
    cpus = CpuPlan.choose(args.server_cpus, args.load_cpus)
    cpus.pin_self_to_load_cpus()
    workdir = Path(tempfile.mkdtemp(prefix="voicetap-bench-"))
    factory = WebhookFactory(SigningKey.generate())
    started = time.time()
    redis_server = EmbeddedRedis(workdir / "redis", appendonly=not args.no_appendonly)
    redis_server.start()
    results: dict[str, dict[str, object]] = {}
    try:
        redis = Redis.from_url(redis_server.url, socket_timeout=60)
        redis_version = redis.info("server").get("valkey_version") or redis.info("server").get(
            "redis_version"
        )
        for impl in implementations(redis_server.url, factory.public_key):
            if not args.only or impl.key == args.only:
                results[impl.key] = bench_one(
                    impl, redis=redis, factory=factory, cpus=cpus, args=args, workdir=workdir
                )
        redis.close()
    finally:
        redis_server.stop()
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    document: dict[str, object] = {
        "benchmark": "webhook gateway: verified + stored Telnyx webhooks over HTTP",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine,
        "software": {
            "wrk": wrk_version(),
            "redis_server": f"valkey {redis_version} ({server_binary().name}, "
            + (
                "appendonly no: diagnosis run, not production-like)"
                if args.no_appendonly
                else "appendonly yes, appendfsync everysec)"
            ),
            "taskset": tool_version(["taskset", "--version"]),
            "packages": package_versions(
                [
                    "uvicorn",
                    "uvloop",
                    "httptools",
                    "starlette",
                    "redis",
                    "pynacl",
                    "orjson",
                    "flask",
                    "gunicorn",
                    "telnyx",
                ]
            ),
            "repository": git_revision(REPO),
        },
        "cpu_pinning": cpus.as_json(),
        "parameters": {
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rate": args.rate,
            "rate_duration_s": args.rate_duration,
            "rate_connections": args.rate_connections,
            "wrk_threads": args.threads,
            "wrk_timeout_s": WRK_TIMEOUT_S,
            "webhooks": "distinct data.id each, signed Ed25519 at most a few seconds before use; 3/4 call.transcription, 1/4 call.answered",
        },
        "results": results,
    }
    document["evaluation"] = evaluate(results)
    document["markdown"] = render(document)
    write_json(args.out, document)
    print(document["markdown"])
    print(f"\nJSON: {args.out}")
    if not all(r["redis_check"]["all_acknowledged_stored_once"] for r in results.values()):  # type: ignore[index]
        sys.exit(
            "bench: some acknowledged webhooks are not in Redis exactly once: this run is not a result"
        )


if __name__ == "__main__":
    main()
