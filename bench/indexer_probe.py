"""Webhook-to-searchable latency at a fixed rate: open-loop sender + visibility probe, one process.

    python bench/indexer_probe.py --port GATEWAY_PORT --requests FILE --ids FILE --rate 1000 \\
        --sqlite PATH [--search-port INDEXER_PORT --search-every 20] --out OUT.json

Request ``i`` (a signed ``call.transcription`` webhook, final, whose text holds a unique token) is
sent to the gateway at ``start + i / rate`` whatever happened before (open loop, as
``harness/openloop.py``). Its latency runs from that due time to when the segment is visible:

- **committed** (every event): a read-only connection tails the ``segments`` table by rowid every
  ``--poll-ms`` (one indexed range query, whatever the rate), so a row is seen within one poll of
  its commit; this works for the indexer and the baseline alike (same table);
- **in /search** (one event in ``--search-every``, indexer only): ``GET /search?q=<token>`` polled
  every ``--poll-ms`` over a keep-alive connection from the moment the gateway answered, until the
  answer holds the token: the user-visible definition, sampled so that the probe does not load the
  API it measures.
"""

import argparse
import asyncio
import json
import sqlite3
import time
from pathlib import Path

from harness.openloop import _exchange
from harness.report import percentiles
from harness.requestfile import read


async def run(args: argparse.Namespace) -> dict[str, object]:
    requests = read(args.requests)
    ids: list[str] = json.loads(args.ids.read_text())
    tokens: list[str] = json.loads(args.tokens.read_text())
    index_of = {event_id: i for i, event_id in enumerate(ids)}
    n = len(requests)
    due = [0.0] * n
    answered = [0.0] * n
    status = [0] * n
    visible = [0.0] * n
    searchable: dict[int, float] = {}
    search_tasks: list[asyncio.Task[None]] = []
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    poll = args.poll_ms / 1000
    stop_tail = asyncio.Event()

    async def search(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.search_port)
        request = (f"GET /search?q={tokens[index]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
        token = tokens[index].encode()
        deadline = time.perf_counter() + args.deadline
        try:
            while time.perf_counter() < deadline:
                code, body, _ = await _exchange(reader, writer, request)
                if code == 200 and token in body:
                    searchable[index] = time.perf_counter()
                    return
                await asyncio.sleep(poll)
        finally:
            writer.close()

    async def worker() -> None:
        reader = writer = None
        while (index := await queue.get()) is not None:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
                code, _, close = await _exchange(reader, writer, requests[index])  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError):
                status[index] = -1
                reader = writer = None
                continue
            answered[index], status[index] = time.perf_counter(), code
            if args.search_port and index % args.search_every == 0 and 200 <= code < 300:
                search_tasks.append(asyncio.create_task(search(index)))
            if close:
                writer.close()
                reader = writer = None

    async def tail() -> None:
        conn = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True)
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM segments").fetchone()[0]
        queries = 0
        while True:
            rows = conn.execute(
                "SELECT id, event_id FROM segments WHERE id > ? ORDER BY id", (last,)
            ).fetchall()
            queries += 1
            now = time.perf_counter()
            for rowid, event_id in rows:
                last = rowid
                i = index_of.get(event_id)
                if i is not None and not visible[i]:
                    visible[i] = now
            if stop_tail.is_set():
                break
            await asyncio.sleep(poll)
        conn.close()
        tail_stats["queries"] = queries

    tail_stats: dict[str, int] = {}
    tailer = asyncio.create_task(tail())
    workers = [asyncio.create_task(worker()) for _ in range(args.connections)]
    start = time.perf_counter() + 0.05
    lag = []
    for i in range(n):
        due[i] = start + i / args.rate
        wait = due[i] - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        lag.append(time.perf_counter() - due[i])
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.wait(workers, timeout=args.deadline)
    deadline = time.perf_counter() + args.deadline
    acked = [i for i in range(n) if 200 <= status[i] < 300]
    while time.perf_counter() < deadline and not all(visible[i] for i in acked):
        await asyncio.sleep(0.05)
    stop_tail.set()
    await tailer
    if search_tasks:
        await asyncio.wait(search_tasks, timeout=args.deadline)
    # uvloop timers have 1 ms resolution: a request may leave up to 1 ms early, so count from min(due, sent)
    committed = [(visible[i] - due[i]) * 1e3 for i in acked if visible[i]]
    in_search = [(searchable[i] - due[i]) * 1e3 for i in sorted(searchable)]
    post = [(answered[i] - due[i]) * 1e3 for i in acked]
    statuses: dict[str, int] = {}
    for code in status:
        statuses[str(code)] = statuses.get(str(code), 0) + 1
    return {
        "requests": n,
        "target_rate": args.rate,
        "connections": args.connections,
        "poll_ms": args.poll_ms,
        "statuses": statuses,
        "acknowledged": len(acked),
        "visible": len(committed),
        "not_visible_within_deadline": len(acked) - len(committed),
        "schedule_s": round(due[-1] - start, 3),
        "send_lag_ms": percentiles([x * 1e3 for x in lag]),
        "webhook_answer_ms": percentiles(post),
        "webhook_to_committed_ms": percentiles(committed),
        "search_samples": len(
            [i for i in range(n) if args.search_port and i % args.search_every == 0 and i in acked]
        ),
        "webhook_to_search_ms": percentiles(in_search),
        "search_not_found": (len(search_tasks) - len(in_search)) if args.search_port else None,
        "tail_queries": tail_stats.get("queries"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument(
        "--ids", type=Path, required=True, help="JSON list: event id of each request, in order"
    )
    parser.add_argument(
        "--tokens",
        type=Path,
        required=True,
        help="JSON list: the unique search token of each request",
    )
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sqlite", type=Path, required=True)
    parser.add_argument("--search-port", type=int, default=0)
    parser.add_argument("--search-every", type=int, default=20)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--deadline", type=float, default=15.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(run(args))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
