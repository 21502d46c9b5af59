"""SQLite back end: one file, WAL, FTS5; every call runs in a worker thread, never on the loop.

Several indexer processes may share the file: a write transaction starts with ``BEGIN IMMEDIATE``
(it takes the write lock at once, so two writers never deadlock upgrading a read lock) and waits
up to the busy timeout for another process's lock; past it the batch is retried later. Times are
integer microseconds since the epoch, exact both ways.
"""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from transcript_indexer.query import Node, to_fts5
from transcript_indexer.records import Batch
from transcript_indexer.storage import sql
from transcript_indexer.storage.base import (
    MARK_END,
    MARK_START,
    Applied,
    CallFilter,
    CallInfo,
    DueCompletion,
    SearchHit,
    StorageUnavailable,
    Transcript,
)

T = TypeVar("T")

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE calls (
                call_control_id TEXT PRIMARY KEY,
                call_session_id TEXT, call_leg_id TEXT, from_number TEXT, to_number TEXT, direction TEXT,
                state TEXT, state_rank INTEGER NOT NULL DEFAULT 0,
                first_event_at INTEGER NOT NULL, start_time INTEGER, initiated_at INTEGER, answered_at INTEGER,
                ended_at INTEGER, started_at INTEGER NOT NULL,
                hangup_cause TEXT, hangup_source TEXT, sip_hangup_cause TEXT,
                last_activity_at INTEGER NOT NULL, completed_at INTEGER)""",
            "CREATE INDEX calls_started ON calls (started_at DESC, call_control_id)",
            "CREATE INDEX calls_from ON calls (from_number)",
            "CREATE INDEX calls_to ON calls (to_number)",
            "CREATE INDEX calls_due ON calls (last_activity_at) WHERE ended_at IS NOT NULL AND completed_at IS NULL",
            """CREATE TABLE segments (
                id INTEGER PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE, call_control_id TEXT NOT NULL, occurred_at INTEGER NOT NULL,
                track TEXT NOT NULL, text TEXT NOT NULL, confidence REAL)""",
            "CREATE INDEX segments_call ON segments (call_control_id, track, occurred_at)",
            """CREATE VIRTUAL TABLE segments_fts USING fts5(
                text, content='segments', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
            """CREATE TRIGGER segments_fts_insert AFTER INSERT ON segments BEGIN
                INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text); END""",
            """CREATE TRIGGER segments_fts_delete AFTER DELETE ON segments BEGIN
                INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text); END""",
            """CREATE TABLE partials (
                call_control_id TEXT NOT NULL, track TEXT NOT NULL, event_id TEXT NOT NULL,
                occurred_at INTEGER NOT NULL, text TEXT NOT NULL, confidence REAL,
                PRIMARY KEY (call_control_id, track))""",
        ],
    ),
    # The per-row trigger cost 16 µs a segment, three times the insert itself; the rows a batch
    # adds are indexed by one INSERT ... SELECT instead (see _apply).
    (2, ["DROP TRIGGER segments_fts_insert"]),
    # Revisions of the completed transcript: segments stored after it make the call due again.
    (
        3,
        [
            "ALTER TABLE calls ADD COLUMN segment_seq INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE calls ADD COLUMN completed_seq INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE calls ADD COLUMN completed_revision INTEGER NOT NULL DEFAULT 0",
            "UPDATE calls SET completed_revision = 1 WHERE completed_at IS NOT NULL",
            "DROP INDEX calls_due",
            sql.DUE_INDEX,
        ],
    ),
    (4, [sql.ENDED_INDEX]),
]

_P = {"p": "?", "greatest": "MAX", "least": "MIN", "ts": "INTEGER", "real": "REAL"}
CALL_UPSERT = sql.CALL_UPSERT.format(**_P)
PARTIAL_UPSERT = sql.PARTIAL_UPSERT.format(**_P)
PARTIALS_SUPERSEDED = sql.PARTIALS_SUPERSEDED.format(**_P)
TOUCH_CALL = sql.TOUCH_CALL.format(**_P)
DUE_COMPLETIONS = sql.DUE_COMPLETIONS.format(**_P)
MARK_COMPLETED = sql.MARK_COMPLETED.format(**_P)
ENDED_BEFORE = sql.ENDED_BEFORE.format(**_P)
SEGMENT_INSERT = f"INSERT INTO segments ({sql.SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
FTS_INDEX_NEW = "INSERT INTO segments_fts (rowid, text) SELECT id, text FROM segments WHERE id > ?"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


class SqliteStorage:
    def __init__(self, path: Path, busy_timeout_ms: int = 2000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # One thread at a time per connection; the writer and the reader never wait for each other.
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_timeout_ms / 1000,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(
            "PRAGMA cache_size = -65536"
        )  # 64 MiB of page cache: the FTS index stays in memory
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    async def open(self) -> None:
        await _run(self._open)

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._reader = self._connect()
        self._reader.execute("PRAGMA query_only = ON")
        self._write(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
        )
        current = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ).fetchone()[0]
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)", (version, _ts(datetime.now(UTC)))
                )

    async def close(self) -> None:
        await _run(self._close)

    def _close(self) -> None:
        for conn, lock in ((self._writer, self._write_lock), (self._reader, self._read_lock)):
            if conn is not None:
                with lock:
                    conn.close()
        self._writer = self._reader = None

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise StorageUnavailable("sqlite: not open (yet)")
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable(f"sqlite: {exc}") from exc

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise StorageUnavailable("sqlite: not open (yet)")
        with self._read_lock:
            try:
                return work(self._reader)
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable(f"sqlite: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await _run(self._read, lambda c: c.execute("SELECT 1").fetchone()))
        except StorageUnavailable:
            return False

    async def apply(self, batch: Batch, now: datetime) -> Applied:
        return await _run(self._write, lambda conn: self._apply(conn, batch, _ts(now)))

    def _apply(self, conn: sqlite3.Connection, batch: Batch, now: int | None) -> Applied:
        applied = Applied()
        # Sorted, as in PostgreSQL, where it keeps concurrent writers from deadlocking.
        conn.executemany(
            CALL_UPSERT, [sql.call_params(batch.calls[k], now, _ts) for k in sorted(batch.calls)]
        )
        # The write lock is held since BEGIN IMMEDIATE: what is not there now is new.
        ids = list(batch.segments)
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            known.update(
                r[0]
                for r in conn.execute(
                    f"SELECT event_id FROM segments WHERE event_id IN ({marks})", chunk
                )
            )
        applied.segments.extend(
            row for event_id, row in batch.segments.items() if event_id not in known
        )
        last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM segments").fetchone()[0]
        conn.executemany(
            SEGMENT_INSERT,
            [
                (r.event_id, r.call_control_id, _ts(r.occurred_at), r.track, r.text, r.confidence)
                for r in applied.segments
            ],
        )
        # Under the write lock, the rows past last_id are this batch's: index them in one statement.
        conn.execute(FTS_INDEX_NEW, (last_id,))
        touched = {row.call_control_id for row in applied.segments}
        conn.executemany(PARTIALS_SUPERSEDED, sql.newest_finals(applied.segments, _ts))
        for row in batch.partials.values():
            if conn.execute(PARTIAL_UPSERT, sql.partial_params(row, _ts)).fetchone():
                applied.partials.append(row)
        conn.executemany(TOUCH_CALL, [(now, call_id) for call_id in sorted(touched)])
        return applied

    async def get_call(self, call_control_id: str) -> CallInfo | None:
        return await _run(self._read, lambda conn: self._get_call(conn, call_control_id))

    def _get_call(self, conn: sqlite3.Connection, call_control_id: str) -> CallInfo | None:
        row = conn.execute(
            f"SELECT {sql.CALL_COLUMNS} FROM calls WHERE call_control_id = ?", (call_control_id,)
        ).fetchone()
        return None if row is None else sql.call_from_row(row, _dt)

    async def counts(self, call_control_id: str) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            counts = dict(
                conn.execute(
                    "SELECT track, COUNT(*) FROM segments WHERE call_control_id = ? GROUP BY track",
                    (call_control_id,),
                ).fetchall()
            )
            partials = conn.execute(
                "SELECT COUNT(*) FROM partials WHERE call_control_id = ?", (call_control_id,)
            ).fetchone()[0]
            return {
                "segments": sum(counts.values()),
                **{f"segments_{k or 'unknown'}": v for k, v in counts.items()},
                "partials": partials,
            }

        return await _run(self._read, work)

    async def list_calls(self, where: CallFilter, limit: int, offset: int) -> list[CallInfo]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.since is not None:
            clauses.append("started_at >= ?")
            params.append(_ts(where.since))
        if where.until is not None:
            clauses.append("started_at < ?")
            params.append(_ts(where.until))
        if where.numbers:
            clause, values = sql.numbers_clause(where.numbers, "?")
            clauses.append(clause)
            params.extend(values)
        if where.text is not None:
            clauses.append(
                "call_control_id IN (SELECT s.call_control_id FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid"
                " WHERE segments_fts MATCH ?)"
            )
            params.append(to_fts5(where.text))
        query = (
            f"SELECT {sql.CALL_COLUMNS} FROM calls {'WHERE ' + ' AND '.join(clauses) if clauses else ''}"
            " ORDER BY started_at DESC, call_control_id LIMIT ? OFFSET ?"
        )
        rows = await _run(
            self._read, lambda conn: conn.execute(query, (*params, limit, offset)).fetchall()
        )
        return [sql.call_from_row(row, _dt) for row in rows]

    async def transcript(self, call_control_id: str) -> Transcript | None:
        def work(conn: sqlite3.Connection) -> Transcript | None:
            call = self._get_call(conn, call_control_id)
            if call is None:
                return None
            segments = conn.execute(
                f"SELECT {sql.SEGMENT_COLUMNS} FROM segments WHERE call_control_id = ? ORDER BY occurred_at, track, event_id",
                (call_control_id,),
            ).fetchall()
            partials = conn.execute(
                f"SELECT {sql.SEGMENT_COLUMNS} FROM partials WHERE call_control_id = ? ORDER BY occurred_at, track",
                (call_control_id,),
            ).fetchall()
            return Transcript(
                call,
                [sql.segment_from_row(r, _dt) for r in segments],
                [sql.segment_from_row(r, _dt) for r in partials],
            )

        return await _run(self._read, work)

    async def search(self, query: Node, limit: int, offset: int) -> list[SearchHit]:
        statement = (
            "SELECT s.call_control_id, s.event_id, s.occurred_at, s.track,"
            " snippet(segments_fts, 0, ?, ?, '…', 16), -bm25(segments_fts) AS score"
            " FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid"
            " WHERE segments_fts MATCH ? ORDER BY bm25(segments_fts), s.id LIMIT ? OFFSET ?"
        )
        rows = await _run(
            self._read,
            lambda conn: conn.execute(
                statement, (MARK_START, MARK_END, to_fts5(query), limit, offset)
            ).fetchall(),
        )
        return [
            SearchHit(r[0], r[1], _EPOCH + timedelta(microseconds=r[2]), r[3], r[4], r[5])
            for r in rows
        ]

    async def due_completions(self, quiet_since: datetime, limit: int) -> list[DueCompletion]:
        rows = await _run(
            self._read,
            lambda conn: conn.execute(DUE_COMPLETIONS, (_ts(quiet_since), limit)).fetchall(),
        )
        return [DueCompletion(*row) for row in rows]

    async def mark_completed(
        self, call_control_id: str, revision: int, segment_seq: int, now: datetime
    ) -> None:
        await _run(
            self._write,
            lambda conn: conn.execute(
                MARK_COMPLETED, (_ts(now), revision, segment_seq, call_control_id, revision)
            ),
        )

    async def calls_of_numbers(self, numbers: tuple[str, ...]) -> list[str]:
        clause, values = sql.numbers_clause(numbers, "?")
        statement = f"SELECT call_control_id FROM calls WHERE {clause} ORDER BY call_control_id"
        rows = await _run(self._read, lambda conn: conn.execute(statement, values).fetchall())
        return [row[0] for row in rows]

    async def ended_before(self, before: datetime, limit: int) -> list[str]:
        rows = await _run(
            self._read, lambda conn: conn.execute(ENDED_BEFORE, (_ts(before), limit)).fetchall()
        )
        return [row[0] for row in rows]

    async def erase_calls(self, call_control_ids: list[str]) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            counts = {kind: 0 for kind, _ in sql.ERASE_STATEMENTS}
            for start in range(0, len(call_control_ids), 500):
                chunk = call_control_ids[start : start + 500]
                ids = ", ".join("?" * len(chunk))
                for kind, statement in sql.ERASE_STATEMENTS:
                    # the segments_fts_delete trigger takes each segment out of the full-text index
                    counts[kind] += conn.execute(statement.format(ids=ids), chunk).rowcount
            return counts

        return await _run(self._write, work)


async def _run(function: Callable[..., T], *args: Any) -> T:
    """Every database call runs in a worker thread: the event loop never waits on SQLite."""
    return await asyncio.to_thread(function, *args)
