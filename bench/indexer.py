"""Benchmark: the transcript indexer against a one-message-one-commit baseline, same run, same machine.

    .venv/bin/python bench/indexer.py [--events-sqlite 150000] [--events-postgres 60000] [--out bench/results/indexer.json]

1. **Throughput**, for SQLite and for PostgreSQL (a throwaway database on ``--postgres``): the
   ``telnyx.call.transcription`` topic is pre-filled with N final transcriptions as the gateway
   stores them (fields ``id``, ``type``, ``event``, ``call_control_id``, ``received_at``,
   ``attempt``), then ``voicetap indexer`` (one process, as production runs it) or
   ``bench/baseline_indexer.py`` starts; events/s = entries acknowledged by the group per second
   (XINFO GROUPS ``entries-read`` - ``pending``, sampled every 0.1 s), and the rows in the database
   are counted after: every acknowledged event must be a row.
2. **Webhook to searchable** at a fixed rate (SQLite): a real ``voicetap gateway`` takes signed
   webhooks from ``bench/indexer_probe.py`` (open loop, its own process), the indexer (or baseline)
   consumes them; the probe measures, from each webhook's scheduled send time, until its row is
   committed (tailing the table, every event) and until ``/search`` finds its unique token
   (sampled, indexer only).

The indexer or baseline runs on a core of its own; Redis, the gateway, the probe and this script
share the other. ``--consumer-read-ahead off`` starts the indexer with the StreamConsumer's
read-ahead disabled (a bench-only patch, for the before/after comparison).
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harness import profile
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
from nacl.signing import SigningKey
from redis import Redis
from webhooks import _TRANSCRIPTION, WebhookFactory

from voicetap_cli.embedded_redis import EmbeddedRedis, free_port, server_binary
from voicetap_sdk.streams import entry_fields

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.prefix) / "bin"
HOST = "127.0.0.1"
TOPIC = "telnyx.call.transcription"
TARGETS = {"sqlite_events_per_s": 20_000, "p99_ms_searchable": 100.0}
GROUPS = {"indexer": "transcript_indexer", "baseline": "baseline_indexer"}
NO_READ_AHEAD = (
    "import dataclasses, voicetap_sdk.consumer as c\n"
    "_init = c.StreamConsumer.__init__\n"
    "def init(self, redis, producer, options, *a, **k):\n"
    "    _init(self, redis, producer, dataclasses.replace(options, read_ahead=False), *a, **k)\n"
    "c.StreamConsumer.__init__ = init\n"
    "from transcript_indexer.main import main\n"
    "main()\n"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class TranscriptFactory(WebhookFactory):
    """Final ``call.transcription`` envelopes only, each text carrying a unique search token."""

    def token(self, event_id: str) -> str:
        return "tok" + event_id.replace("-", "")[:16]

    def body(self, index: int, event_id: str, occurred_at: str) -> bytes:
        call = self._calls[index % len(self._calls)]
        sentences = (
            "I would like to change the delivery address on my last order",
            "Sure, can you confirm the postcode and the name on the account",
            "It is the one I placed on Tuesday morning, number four two seven",
            "Thank you, I have updated it and you will get an email shortly",
        )
        values = {
            "id": event_id,
            "at": occurred_at,
            "ccid": call.ccid,
            "leg": call.leg,
            "session": call.session,
            "confidence": f"{0.85 + (index % 15) / 100:.6f}",
            "final": "true",
            "text": f"{sentences[index % 4]} {self.token(event_id)}.",
            "track": "inbound" if index % 2 else "outbound",
        }
        return (_TRANSCRIPTION % values).encode()


def prefill(redis: Redis, factory: TranscriptFactory, count: int) -> int:
    """``count`` entries on the topic as the gateway writes them; total body bytes."""
    occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    total = 0
    pipe = redis.pipeline(transaction=False)
    for index in range(count):
        event_id = str(uuid.uuid4())
        body = factory.body(index, event_id, occurred_at)
        total += len(body)
        ccid = factory._calls[index % len(factory._calls)].ccid
        pipe.xadd(
            TOPIC,
            entry_fields(
                event_id,
                "call.transcription",
                body,
                call_control_id=ccid,
                received_at=f"{time.time():.6f}",
                attempt="1",
            ),
        )
        if index % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    return total


def acked(redis: Redis, group: str) -> int:
    for info in redis.xinfo_groups(TOPIC):
        if info["name"].decode() == group:
            return int(info.get("entries-read") or 0) - int(info["pending"])
    return 0


def database_url(backend: str, impl: str, workdir: Path, postgres: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{impl}.sqlite3'}"
    return postgres.rsplit("/", 1)[0] + f"/voicetap_bench_{impl}_{os.getpid()}"


def pg_admin(postgres: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(statement)


def count_rows(url: str) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM segments").fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM segments").fetchone()[0])  # type: ignore[index]


def server_for(
    impl: str,
    backend_url: str,
    redis_url: str,
    workdir: Path,
    cpus: CpuPlan,
    port: int,
    read_ahead: bool,
) -> ServerProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "VOICETAP_DATA_DIR": str(workdir / f"data-{impl}"),
    }
    if impl == "indexer":
        env |= {
            "INDEXER_DATABASE_URL": backend_url,
            "INDEXER_PORT": str(port),
            "INDEXER_HOST": HOST,
        }
        argv = (
            [str(VENV_BIN / "voicetap"), "indexer"]
            if read_ahead
            else [sys.executable, "-c", NO_READ_AHEAD]
        )
    else:
        argv = [
            sys.executable,
            str(BENCH_DIR / "baseline_indexer.py"),
            "--redis",
            redis_url,
            "--database",
            backend_url,
        ]
    return ServerProcess(
        impl,
        [*cpus.prefix(cpus.server_cpus), *argv],
        env,
        workdir,
        workdir / f"{impl}-{int(time.time() * 1000)}.log",
    )


def throughput(
    impl: str,
    backend: str,
    *,
    redis: Redis,
    redis_url: str,
    factory: TranscriptFactory,
    count: int,
    cap_s: float,
    workdir: Path,
    cpus: CpuPlan,
    args: argparse.Namespace,
) -> dict[str, object]:
    redis.flushall()
    fill_started = time.perf_counter()
    body_bytes = prefill(redis, factory, count)
    log(
        f"{impl}/{backend}: topic pre-filled with {count:,} entries in {time.perf_counter() - fill_started:.1f} s"
    )
    url = database_url(backend, impl, workdir, args.postgres)
    if backend == "postgres":
        pg_admin(args.postgres, f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]}")
        pg_admin(args.postgres, f"CREATE DATABASE {url.rsplit('/', 1)[1]}")
    server = server_for(
        impl, url, redis_url, workdir, cpus, free_port(), args.consumer_read_ahead == "on"
    )
    group = GROUPS[impl]
    result: dict[str, object] = {
        "events": count,
        "mean_body_bytes": round(body_bytes / count, 1),
        "database": backend,
        "load_average_before": load_average(),
        "command": " ".join(server.argv[len(cpus.prefix(cpus.server_cpus)) :])
        .replace(str(VENV_BIN) + "/", ".venv/bin/")
        .replace(NO_READ_AHEAD, "<indexer with read-ahead off>"),
    }
    samples: list[tuple[float, int]] = []
    server.start()
    started = time.perf_counter()
    sampler = None
    try:
        first: tuple[float, int, float, dict[str, tuple[int, int]]] | None = None
        while True:
            now = time.perf_counter()
            done = acked(redis, group) if redis.exists(TOPIC) else 0
            samples.append((now - started, done))
            if first is None and done > 0:
                first = (now, done, server.cpu_seconds(), cpu_ticks())
                if args.profile:
                    path = (
                        args.out.parent / "profiles" / f"{args.out.stem}-{impl}-{backend}.collapsed"
                    )
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sampler = (
                        profile.start(args.profile, server.pid, min(8, cap_s), path, cpus),
                        path,
                    )
            if done >= count or now - started > cap_s:
                break
            if server._process is not None and server._process.poll() is not None:
                raise RuntimeError(f"{impl} exited:\n{server.log_tail()}")
            time.sleep(0.1)
        end = time.perf_counter()
        cpu_end, ticks_end = server.cpu_seconds(), cpu_ticks()
        result["memory"] = server.memory()
    finally:
        server.stop()
    if sampler is not None:
        sampler[0].wait(30)
        result["profile"] = {
            "file": str(sampler[1].relative_to(REPO)),
            **profile.summarise(sampler[1], 250 * int(min(8, cap_s))),
        }
    final = acked(redis, group)
    assert first is not None, f"{impl}/{backend}: nothing was acknowledged within {cap_s} s"
    window = end - first[0]
    rate = (samples[-1][1] - first[1]) / window if window > 0 else 0.0
    cpu_s = cpu_end - first[2]
    rows = count_rows(url)
    result.update(
        {
            "acknowledged": final,
            "completed": final >= count,
            "time_to_first_ack_s": round(first[0] - started, 2),
            "window_s": round(window, 2),
            "events_per_s": round(rate, 1),
            "server_cpu_utilisation": round(cpu_s / window, 2) if window else None,
            "events_per_server_cpu_s": round((samples[-1][1] - first[1]) / cpu_s, 1)
            if cpu_s
            else None,
            "core_busy_share": cpu_busy_between(first[3], ticks_end),
            "rows_in_database": rows,
            "every_acknowledged_event_is_a_row": rows >= final,
            "progress": [(round(t, 2), n) for t, n in samples[:: max(1, len(samples) // 60)]],
        }
    )
    if backend == "postgres":
        pg_admin(args.postgres, f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    log(f"{impl}/{backend}: {rate:,.0f} events/s ({final:,} acknowledged, {rows:,} rows)")
    return result


def latency(
    impl: str,
    *,
    redis: Redis,
    redis_url: str,
    factory: TranscriptFactory,
    workdir: Path,
    cpus: CpuPlan,
    args: argparse.Namespace,
) -> dict[str, object]:
    redis.flushall()
    url = database_url("sqlite", f"{impl}-latency", workdir, args.postgres)
    api_port, gateway_port = free_port(), free_port()
    server = server_for(
        impl, url, redis_url, workdir, cpus, api_port, args.consumer_read_ahead == "on"
    )
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    gateway = ServerProcess(
        "gateway",
        [*cpus.prefix(cpus.load_cpus), str(VENV_BIN / "voicetap"), "gateway"],
        {
            **base_env,
            "REDIS_URL": redis_url,
            "TELNYX_PUBLIC_KEY": factory.public_key,
            "GATEWAY_HOST": HOST,
            "GATEWAY_PORT": str(gateway_port),
            "LOG_LEVEL": "WARNING",
        },
        workdir,
        workdir / f"gateway-{impl}.log",
    )
    count = int(args.rate * args.rate_duration)
    result: dict[str, object] = {"load_average_before": load_average()}
    gateway.start()
    server.start()
    try:
        gateway.wait_ready(HOST, gateway_port)
        if impl == "indexer":
            server.wait_ready(HOST, api_port)
        db = Path(url.removeprefix("sqlite:///"))
        for _ in range(100):  # the baseline creates its table at start
            if db.exists() and count_rows(url) == 0:
                break
            time.sleep(0.1)
        batch = factory.signed_requests(count, HOST, gateway_port)
        requests_path = workdir / f"latency-{impl}.req"
        write_parts(requests_path, batch.requests, 1)
        ids = [json.loads(r.split(b"\r\n\r\n", 1)[1])["data"]["id"] for r in batch.requests]
        (workdir / f"latency-{impl}.ids").write_text(json.dumps(ids))
        (workdir / f"latency-{impl}.tokens").write_text(json.dumps([factory.token(i) for i in ids]))
        out = workdir / f"latency-{impl}.json"
        argv = [
            *cpus.prefix(cpus.load_cpus),
            sys.executable,
            str(BENCH_DIR / "indexer_probe.py"),
            "--port",
            str(gateway_port),
            "--requests",
            str(requests_path) + ".0",
            "--ids",
            str(workdir / f"latency-{impl}.ids"),
            "--tokens",
            str(workdir / f"latency-{impl}.tokens"),
            "--rate",
            f"{args.rate:g}",
            "--sqlite",
            str(db),
            "--out",
            str(out),
        ]
        if impl == "indexer":
            argv += ["--search-port", str(api_port), "--search-every", str(args.search_every)]
        cpu_before, ticks_before = server.cpu_seconds(), cpu_ticks()
        probe = subprocess.run(
            argv,
            env={**os.environ, "PYTHONPATH": str(BENCH_DIR)},
            capture_output=True,
            text=True,
            timeout=args.rate_duration + 120,
        )
        if probe.returncode != 0:
            raise RuntimeError(f"probe failed:\n{probe.stdout}\n{probe.stderr}")
        result.update(json.loads(out.read_text()))
        result["server_cpu_utilisation"] = round(
            (server.cpu_seconds() - cpu_before) / (args.rate_duration + 0.5), 2
        )
        result["core_busy_share"] = cpu_busy_between(ticks_before, cpu_ticks())
        result["probe_command"] = " ".join(argv[len(cpus.prefix(cpus.load_cpus)) :]).replace(
            str(workdir), "$WORKDIR"
        )
        result["memory"] = server.memory()
    finally:
        server.stop()
        gateway.stop()
    log(
        f"{impl}: {args.rate:g}/s webhook -> committed p50 {result['webhook_to_committed_ms'].get('p50')} ms, "  # type: ignore[union-attr]
        f"p99 {result['webhook_to_committed_ms'].get('p99')} ms; /search p99 {result['webhook_to_search_ms'].get('p99')} ms"
    )  # type: ignore[union-attr]
    return result


def render(document: dict[str, object]) -> str:
    results: dict[str, dict] = document["results"]  # type: ignore[assignment]
    rows = []
    for impl, title in (
        ("indexer", "voicetap indexer"),
        ("baseline", "baseline (1 read, 1 commit, 1 ack)"),
    ):
        r = results.get(impl, {})
        cells = [title]
        for backend in ("sqlite", "postgres"):
            t = r.get("throughput", {}).get(backend)
            cells.append(
                f"{t['events_per_s']:,.0f}/s ({t['server_cpu_utilisation']:.0%} CPU)"
                + ("" if t["completed"] else " (capped)")
                if t
                else "n/a"
            )
        lat = r.get("latency")
        if lat:
            c = lat["webhook_to_committed_ms"]
            s = lat["webhook_to_search_ms"]
            cells.append(
                f"{fmt_ms(c.get('p50'))} / {fmt_ms(c.get('p99'))} / {fmt_ms(c.get('max'))}"
            )
            cells.append(
                f"{fmt_ms(s.get('p50'))} / {fmt_ms(s.get('p99'))} (n={len(s) and lat['search_samples']})"
                if s
                else "n/a (no /search)"
            )
            cells.append(f"{lat['visible']:,} / {lat['acknowledged']:,}")
        else:
            cells += ["n/a", "n/a", "n/a"]
        mem = r.get("throughput", {}).get("sqlite", {}).get("memory", {})
        cells.append(f"{mem.get('peak_rss_mib_total', 0):.0f} MiB")
        rows.append(cells)
    params = document["parameters"]
    header = [
        "implementation",
        "events/s into SQLite",
        "events/s into PostgreSQL",
        f"webhook → committed p50 / p99 / max at {params['rate']:,.0f}/s",
        "webhook → in /search p50 / p99 (sampled)",  # type: ignore[index]
        "visible / acknowledged",
        "peak RSS (SQLite run)",
    ]
    lines = [markdown_table(header, rows)]
    evaluation: dict[str, dict] = document["evaluation"]  # type: ignore[assignment]
    if evaluation:
        lines.append(
            "\n"
            + markdown_table(
                ["target", "wanted", "measured", "met"],
                [
                    [k, v["target"], str(v["value"]), "yes" if v["met"] else "**no**"]
                    for k, v in evaluation.items()
                ],
            )
        )
    return "\n".join(lines)


def evaluate(results: dict[str, dict]) -> dict[str, object]:
    evaluation: dict[str, object] = {}
    indexer = results.get("indexer", {})
    sqlite_tp = indexer.get("throughput", {}).get("sqlite")
    if sqlite_tp:
        v = sqlite_tp["events_per_s"]
        evaluation["events/s into SQLite, one indexer process"] = {
            "target": f">= {TARGETS['sqlite_events_per_s']:,}",
            "value": v,
            "met": bool(
                v >= TARGETS["sqlite_events_per_s"]
                and sqlite_tp["every_acknowledged_event_is_a_row"]
            ),
        }
    lat = indexer.get("latency")
    if lat:
        p99 = max(
            lat["webhook_to_committed_ms"].get("p99", 1e9),
            lat["webhook_to_search_ms"].get("p99", 0),
        )
        evaluation["p99 webhook → searchable at 1,000/s"] = {
            "target": f"< {TARGETS['p99_ms_searchable']:g} ms",
            "value": p99,
            "met": bool(
                p99 < TARGETS["p99_ms_searchable"] and lat["not_visible_within_deadline"] == 0
            ),
        }
    base = results.get("baseline", {}).get("throughput", {}).get("sqlite")
    if sqlite_tp and base:
        evaluation["indexer / baseline, SQLite"] = {
            "target": "(comparison)",
            "value": round(sqlite_tp["events_per_s"] / base["events_per_s"], 1),
            "met": True,
        }
    return evaluation


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events-sqlite", type=int, default=150_000)
    parser.add_argument("--events-postgres", type=int, default=60_000)
    parser.add_argument(
        "--cap", type=float, default=25, help="longest drain of the indexer, seconds (default 25)"
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=8,
        help="how long the baseline drains (default 8 s)",
    )
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--rate-duration", type=float, default=10)
    parser.add_argument("--search-every", type=int, default=20)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--only", choices=["indexer", "baseline"])
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--consumer-read-ahead", choices=["on", "off"], default="on")
    parser.add_argument("--server-cpus")
    parser.add_argument("--load-cpus")
    parser.add_argument(
        "--profile", action="store_const", const=profile.find_py_spy(), default=None
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "indexer.json")
    parser.add_argument("--keep-workdir", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    machine = machine_info()
    cpus = CpuPlan.choose(args.server_cpus, args.load_cpus)
    cpus.pin_self_to_load_cpus()
    workdir = Path(tempfile.mkdtemp(prefix="voicetap-bench-indexer-"))
    factory = TranscriptFactory(SigningKey.generate())
    started = time.time()
    redis_server = EmbeddedRedis(workdir / "redis")
    redis_server.start()
    results: dict[str, dict] = {}
    try:
        redis = Redis.from_url(redis_server.url, socket_timeout=120)
        for impl in ("indexer", "baseline"):
            if args.only and impl != args.only:
                continue
            results[impl] = {"throughput": {}}
            for backend in args.backends.split(","):
                count = args.events_sqlite if backend == "sqlite" else args.events_postgres
                cap = args.cap if impl == "indexer" else args.baseline_seconds
                results[impl]["throughput"][backend] = throughput(
                    impl,
                    backend,
                    redis=redis,
                    redis_url=redis_server.url,
                    factory=factory,
                    count=count,
                    cap_s=cap,
                    workdir=workdir,
                    cpus=cpus,
                    args=args,
                )
            if not args.skip_latency:
                results[impl]["latency"] = latency(
                    impl,
                    redis=redis,
                    redis_url=redis_server.url,
                    factory=factory,
                    workdir=workdir,
                    cpus=cpus,
                    args=args,
                )
        redis_version = redis.info("server").get("valkey_version") or redis.info("server").get(
            "redis_version"
        )
        redis.close()
    finally:
        redis_server.stop()
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    document: dict[str, object] = {
        "benchmark": "transcript indexer: events/s persisted from a pre-filled topic; webhook -> searchable latency at a fixed rate",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine,
        "software": {
            "redis_server": f"valkey {redis_version} ({server_binary().name}, appendonly yes, appendfsync everysec)",
            "postgresql": tool_version(["psql", "--version"]),
            "sqlite": sqlite3.sqlite_version,
            "taskset": tool_version(["taskset", "--version"]),
            "packages": package_versions(
                ["redis", "psycopg", "uvicorn", "uvloop", "starlette", "orjson"]
            ),
            "repository": git_revision(REPO),
        },
        "cpu_pinning": cpus.as_json(),
        "parameters": {
            "events_sqlite": args.events_sqlite,
            "events_postgres": args.events_postgres,
            "cap_s": args.cap,
            "baseline_seconds": args.baseline_seconds,
            "rate": args.rate,
            "rate_duration_s": args.rate_duration,
            "search_every": args.search_every,
            "consumer_read_ahead": args.consumer_read_ahead,
            "events": "final call.transcription envelopes (~620-byte bodies) over 200 calls, distinct data.id, unique token in each text",
        },
        "results": results,
    }
    document["evaluation"] = evaluate(results)
    document["markdown"] = render(document)
    write_json(args.out, document)
    print(document["markdown"])
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
