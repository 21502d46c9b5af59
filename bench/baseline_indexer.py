"""Baseline for the indexer benchmark: one message read, one row committed, one ack at a time.

    python bench/baseline_indexer.py --redis URL --database sqlite:///PATH|postgresql://... [--group G]

The straightforward way to persist ``telnyx.call.transcription`` from a consumer group: redis-py
``XREADGROUP COUNT 1``, parse the event, ``INSERT`` the final segment and its full-text row,
``COMMIT``, ``XACK``. Idempotent on the event id (``INSERT OR IGNORE`` / ``ON CONFLICT DO NOTHING``),
so it is as correct as the indexer for what it does (final segments only; no calls, partials, live
feed or completion, which only makes it cheaper). SQLite in WAL mode with ``synchronous=NORMAL``
like the indexer; PostgreSQL with the same ``tsvector`` + GIN index as the indexer.
"""

import argparse
import json
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from redis import Redis

TOPIC = "telnyx.call.transcription"

SQLITE_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS segments (
        id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, call_control_id TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, track TEXT NOT NULL, text TEXT NOT NULL, confidence REAL)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS segments_fts USING fts5(
        text, content='segments', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
]
POSTGRES_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS segments (
        id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, call_control_id TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL, track TEXT NOT NULL, text TEXT NOT NULL, confidence DOUBLE PRECISION,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)""",
    "CREATE INDEX IF NOT EXISTS segments_tsv ON segments USING GIN (tsv)",
]


def _segment(
    fields: dict[bytes, bytes],
) -> tuple[str, str, datetime, str, str, float | None] | None:
    event = json.loads(fields[b"event"])["data"]
    data = event["payload"]["transcription_data"]
    if not data.get("is_final"):
        return None
    occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    return (
        event["id"],
        event["payload"]["call_control_id"],
        occurred,
        data.get("transcription_track", ""),
        data["transcript"],
        data.get("confidence"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--group", default="baseline_indexer")
    args = parser.parse_args()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    redis = Redis.from_url(args.redis)
    try:
        redis.xgroup_create(TOPIC, args.group, id="0", mkstream=True)
    except Exception as exc:  # noqa: BLE001 - BUSYGROUP: it exists
        if "BUSYGROUP" not in str(exc):
            raise
    postgres = args.database.startswith("postgresql://")
    if postgres:
        import psycopg

        conn = psycopg.connect(args.database)
        with conn.transaction():
            for statement in POSTGRES_SCHEMA:
                conn.execute(statement)
        insert = (
            "INSERT INTO segments (event_id, call_control_id, occurred_at, track, text, confidence) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
        )
    else:
        path = Path(args.database.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        for statement in SQLITE_SCHEMA:
            conn.execute(statement)
    consumer = f"baseline-{int(time.time())}"
    print("ready", flush=True)
    while not stopping:
        reply = redis.xreadgroup(args.group, consumer, {TOPIC: ">"}, count=1, block=200)
        if not reply:
            continue
        for _, items in reply:
            for entry_id, fields in items:
                row = _segment(fields)
                if row is not None:
                    if postgres:
                        with conn.transaction():
                            conn.execute(insert, row)
                    else:
                        conn.execute("BEGIN")
                        cursor = conn.execute(
                            "INSERT OR IGNORE INTO segments (event_id, call_control_id, occurred_at, track, text, confidence) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (row[0], row[1], int(row[2].timestamp() * 1e6), row[3], row[4], row[5]),
                        )
                        if cursor.rowcount:
                            conn.execute(
                                "INSERT INTO segments_fts (rowid, text) VALUES (?, ?)",
                                (cursor.lastrowid, row[4]),
                            )
                        conn.execute("COMMIT")
                redis.xack(TOPIC, args.group, entry_id)
    conn.close()


if __name__ == "__main__":
    main()
