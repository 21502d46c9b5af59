"""Latency at a fixed request rate: an open-loop HTTP/1.1 load generator (run as its own process).

Request ``i`` is due at ``start + i / rate`` whatever happened to earlier requests; its latency is
measured from that due time to the last byte of its answer. A server that falls behind therefore
shows its queueing in the percentiles instead of slowing the generator down (no coordinated
omission, the flaw of closed-loop tools such as wrk at a fixed rate). Requests go out on a pool of
keep-alive connections; a connection the server closes (``Connection: close``) is reopened, and
that reconnect counts in the latency as it would for a real client.

    python -m harness.openloop --port P --requests FILE --rate 1000 --connections 32 --out OUT.json

``--requests`` is a file in ``requestfile`` format; every request is sent once. The ids of 2xx
answers (their JSON body's ``"id"``) are in the result, as ``acked_ids``.
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path

from harness.machine import CpuPlan
from harness.report import percentiles
from harness.requestfile import read

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)
_ID = re.compile(rb'"id":\s*"([^"]+)"')


class Outcome:
    __slots__ = ("latency", "service", "lag", "done", "status", "error", "ack")

    def __init__(self) -> None:
        self.latency: float | None = None  # due time -> answer complete
        self.service: float | None = None  # send -> answer complete
        self.lag: float | None = (
            None  # due time -> send (generator lateness, waiting for a free connection; < 0: early)
        )
        self.done = 0.0
        self.status = 0
        self.error: str | None = None
        self.ack: str | None = None


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        raise RuntimeError("answer without Content-Length (chunked answers are not supported)")
    body = await reader.readexactly(int(match.group(1)))
    return status, body, _CLOSE.search(head) is not None


async def run(
    host: str, port: int, requests: list[bytes], rate: float, connections: int, deadline_s: float
) -> dict[str, object]:
    outcomes = [Outcome() for _ in requests]
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def worker() -> None:
        reader = writer = None
        while (item := await queue.get()) is not None:
            index, due = item
            outcome = outcomes[index]
            sent = time.perf_counter()
            outcome.lag = sent - due
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                status, body, close = await _exchange(reader, writer, requests[index])  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
                outcome.error = type(exc).__name__
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            done = time.perf_counter()
            # uvloop's timers have 1 ms resolution, so a request may leave up to 1 ms early: then its
            # latency counts from when it left, never from a due time still in the future
            outcome.latency, outcome.service, outcome.status = (
                done - min(due, sent),
                done - sent,
                status,
            )
            outcome.done = done
            if 200 <= status < 300 and (found := _ID.search(body)):
                outcome.ack = found.group(1).decode()
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    for index in range(len(requests)):
        due = start + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        queue.put_nowait((index, due))
    for _ in workers:
        queue.put_nowait(None)
    scheduled_end = time.perf_counter()
    _, pending = await asyncio.wait(workers, timeout=deadline_s)
    for task in pending:
        task.cancel()
    finished = time.perf_counter()

    answered = [o for o in outcomes if o.latency is not None]
    statuses: dict[str, int] = {}
    for o in answered:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.latency is None:
            kind = o.error or "no answer before the deadline"
            errors[kind] = errors.get(kind, 0) + 1
    last_answer = max((o.done for o in answered), default=finished)
    return {
        "target_rate": rate,
        "connections": connections,
        "requests": len(requests),
        "answered": len(answered),
        "statuses": statuses,
        "errors": errors,
        "acked_ids": [o.ack for o in outcomes if o.ack],
        "schedule_s": scheduled_end - start,
        "achieved_rate": len(answered) / (last_answer - start) if answered else 0.0,
        "latency_ms": percentiles([o.latency * 1e3 for o in answered]),  # type: ignore[operator]
        "service_time_ms": percentiles([o.service * 1e3 for o in answered]),  # type: ignore[operator]
        "send_lag_ms": percentiles([o.lag * 1e3 for o in outcomes if o.lag is not None]),
    }


def run_process(
    python: str,
    *,
    port: int,
    requests_path: Path,
    count: int,
    rate: float,
    connections: int,
    out_path: Path,
    cpus: CpuPlan,
    deadline_s: float = 60.0,
) -> dict[str, object]:
    """Run the generator as its own process on the load cores; its JSON result."""
    argv = [
        *cpus.prefix(cpus.load_cpus),
        python,
        "-m",
        "harness.openloop",
        "--port",
        str(port),
        "--requests",
        str(requests_path),
        "--rate",
        f"{rate:g}",
        "--connections",
        str(connections),
        "--deadline",
        f"{deadline_s:g}",
        "--out",
        str(out_path),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    timeout = count / rate + deadline_s + 60
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(
            f"open-loop generator failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
        )
    result: dict[str, object] = json.loads(out_path.read_text())
    result["command"] = " ".join(argv[len(cpus.prefix(cpus.load_cpus)) :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--deadline",
        type=float,
        default=60.0,
        help="seconds to wait for answers after the last send",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    result = asyncio.run(
        run(args.host, args.port, read(args.requests), args.rate, args.connections, args.deadline)
    )
    result["event_loop"] = loop_name
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
