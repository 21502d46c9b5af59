"""PostgreSQL back end: psycopg 3 async pool, ``tsvector`` with a GIN index.

Text is indexed with the ``simple`` configuration (no stemming, no stop words), so a search finds
what SQLite's FTS5 finds. A batch upserts its calls first, in sorted order: the row locks it takes
there serialise concurrent workers per call (no stale partial can slip past a final) and, being
taken in one order, never deadlock. Migrations run under an advisory lock, so processes starting
together apply each one once.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from transcript_indexer.query import Node, to_tsquery
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

_MIGRATION_LOCK = 0x766F6963  # "voic": the advisory lock id held while migrating

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE calls (
                call_control_id text PRIMARY KEY,
                call_session_id text, call_leg_id text, from_number text, to_number text, direction text,
                state text, state_rank integer NOT NULL DEFAULT 0,
                first_event_at timestamptz NOT NULL, start_time timestamptz, initiated_at timestamptz,
                answered_at timestamptz, ended_at timestamptz, started_at timestamptz NOT NULL,
                hangup_cause text, hangup_source text, sip_hangup_cause text,
                last_activity_at timestamptz NOT NULL, completed_at timestamptz)""",
            "CREATE INDEX calls_started ON calls (started_at DESC, call_control_id)",
            "CREATE INDEX calls_from ON calls (from_number)",
            "CREATE INDEX calls_to ON calls (to_number)",
            "CREATE INDEX calls_due ON calls (last_activity_at) WHERE ended_at IS NOT NULL AND completed_at IS NULL",
            """CREATE TABLE segments (
                id bigserial UNIQUE,
                event_id text PRIMARY KEY, call_control_id text NOT NULL, occurred_at timestamptz NOT NULL,
                track text NOT NULL, text text NOT NULL, confidence double precision,
                tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)""",
            "CREATE INDEX segments_call ON segments (call_control_id, track, occurred_at)",
            "CREATE INDEX segments_tsv ON segments USING GIN (tsv)",
            """CREATE TABLE partials (
                call_control_id text NOT NULL, track text NOT NULL, event_id text NOT NULL,
                occurred_at timestamptz NOT NULL, text text NOT NULL, confidence double precision,
                PRIMARY KEY (call_control_id, track))""",
        ],
    ),
    # Revisions of the completed transcript: segments stored after it make the call due again.
    (
        2,
        [
            "ALTER TABLE calls ADD COLUMN segment_seq integer NOT NULL DEFAULT 0,"
            " ADD COLUMN completed_seq integer NOT NULL DEFAULT 0, ADD COLUMN completed_revision integer NOT NULL DEFAULT 0",
            "UPDATE calls SET completed_revision = 1 WHERE completed_at IS NOT NULL",
            "DROP INDEX calls_due",
            sql.DUE_INDEX,
        ],
    ),
    (3, [sql.ENDED_INDEX]),
]

_P = {
    "p": "%s",
    "greatest": "GREATEST",
    "least": "LEAST",
    "ts": "timestamptz",
    "real": "double precision",
}
CALL_UPSERT = sql.CALL_UPSERT.format(**_P)
PARTIAL_UPSERT = sql.PARTIAL_UPSERT.format(**_P)
TOUCH_CALLS = sql.TOUCH_CALLS.format(**_P) + " = ANY(%s)"
DUE_COMPLETIONS = sql.DUE_COMPLETIONS.format(**_P)
MARK_COMPLETED = sql.MARK_COMPLETED.format(**_P)
ENDED_BEFORE = sql.ENDED_BEFORE.format(**_P)
SEGMENTS_INSERT = f"""
INSERT INTO segments ({sql.SEGMENT_COLUMNS})
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
PARTIALS_SUPERSEDED = """
DELETE FROM partials p USING unnest(%s::text[], %s::text[], %s::timestamptz[]) AS f(call_control_id, track, occurred_at)
WHERE p.call_control_id = f.call_control_id AND p.track = f.track AND p.occurred_at <= f.occurred_at
"""


def _same(value: datetime | None) -> datetime | None:
    return value


class PostgresStorage:
    def __init__(self, url: str, pool_size: int = 4, timeout: float = 2.0) -> None:
        """``timeout`` bounds the wait for a connection (and one attempt to open): past it the
        database counts as unavailable."""
        self._url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool = self._new_pool()

    def _new_pool(self) -> AsyncConnectionPool[Any]:
        return AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            timeout=self._timeout,
            kwargs={"options": "-c TimeZone=UTC", "connect_timeout": max(1, int(self._timeout))},
            check=AsyncConnectionPool.check_connection,
        )

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self._timeout)
        except psycopg.OperationalError as exc:
            # A pool that timed out opening has closed itself for good: the next attempt needs a new one.
            await self._pool.close()
            self._pool = self._new_pool()
            raise StorageUnavailable(f"postgresql: {exc}") from exc
        await self._transaction(self._migrate)

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        current = (await cursor.fetchone() or (0,))[0]
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations VALUES (%s, now())", (version,))

    async def close(self) -> None:
        await self._pool.close()

    async def _transaction(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction; a lost or refused connection means try again later."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                return await work(conn)
        except (
            psycopg.OperationalError
        ) as exc:  # includes PoolTimeout, deadlocks, serialisation failures
            raise StorageUnavailable(f"postgresql: {exc}") from exc

    async def _fetch(
        self, statement: str, params: tuple[Any, ...] | list[Any]
    ) -> list[tuple[Any, ...]]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(statement, params)
            return await cursor.fetchall()

        return await self._transaction(work)

    async def ping(self) -> bool:
        try:
            return bool(await self._fetch("SELECT 1", ()))
        except StorageUnavailable:
            return False

    async def apply(self, batch: Batch, now: datetime) -> Applied:
        return await self._transaction(lambda conn: self._apply(conn, batch, now))

    async def _apply(
        self, conn: psycopg.AsyncConnection[Any], batch: Batch, now: datetime
    ) -> Applied:
        applied = Applied()
        async with conn.cursor() as cursor:
            await cursor.executemany(
                CALL_UPSERT,
                [sql.call_params(batch.calls[k], now, _same) for k in sorted(batch.calls)],
            )
            rows = list(batch.segments.values())
            if rows:
                await cursor.execute(
                    SEGMENTS_INSERT,
                    (
                        [r.event_id for r in rows],
                        [r.call_control_id for r in rows],
                        [r.occurred_at for r in rows],
                        [r.track for r in rows],
                        [r.text for r in rows],
                        [r.confidence for r in rows],
                    ),
                )
                inserted = {row[0] for row in await cursor.fetchall()}
                applied.segments.extend(r for r in rows if r.event_id in inserted)
            if applied.segments:
                new = applied.segments
                await cursor.execute(
                    PARTIALS_SUPERSEDED,
                    (
                        [s.call_control_id for s in new],
                        [s.track for s in new],
                        [s.occurred_at for s in new],
                    ),
                )
                await cursor.execute(TOUCH_CALLS, (now, sorted({s.call_control_id for s in new})))
            partials = list(batch.partials.values())
            if partials:
                await cursor.executemany(
                    PARTIAL_UPSERT, [sql.partial_params(p, _same) for p in partials], returning=True
                )
                changed: set[str] = set()
                async for result in cursor.results():
                    changed.update(row[0] for row in await result.fetchall())
                applied.partials.extend(p for p in partials if p.event_id in changed)
        return applied

    async def get_call(self, call_control_id: str) -> CallInfo | None:
        rows = await self._fetch(
            f"SELECT {sql.CALL_COLUMNS} FROM calls WHERE call_control_id = %s", (call_control_id,)
        )
        return sql.call_from_row(rows[0], _same) if rows else None

    async def counts(self, call_control_id: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT track, COUNT(*) FROM segments WHERE call_control_id = %s GROUP BY track",
            (call_control_id,),
        )
        partials = await self._fetch(
            "SELECT COUNT(*) FROM partials WHERE call_control_id = %s", (call_control_id,)
        )
        counts = {track: int(n) for track, n in rows}
        return {
            "segments": sum(counts.values()),
            **{f"segments_{k or 'unknown'}": v for k, v in counts.items()},
            "partials": int(partials[0][0]),
        }

    async def list_calls(self, where: CallFilter, limit: int, offset: int) -> list[CallInfo]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.since is not None:
            clauses.append("started_at >= %s")
            params.append(where.since)
        if where.until is not None:
            clauses.append("started_at < %s")
            params.append(where.until)
        if where.numbers:
            clause, values = sql.numbers_clause(where.numbers, "%s")
            clauses.append(clause)
            params.extend(values)
        if where.text is not None:
            clauses.append(
                "call_control_id IN (SELECT call_control_id FROM segments WHERE tsv @@ to_tsquery('simple', %s))"
            )
            params.append(to_tsquery(where.text))
        query = (
            f"SELECT {sql.CALL_COLUMNS} FROM calls {'WHERE ' + ' AND '.join(clauses) if clauses else ''}"
            " ORDER BY started_at DESC, call_control_id LIMIT %s OFFSET %s"
        )
        return [
            sql.call_from_row(row, _same)
            for row in await self._fetch(query, (*params, limit, offset))
        ]

    async def transcript(self, call_control_id: str) -> Transcript | None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> Transcript | None:
            cursor = await conn.execute(
                f"SELECT {sql.CALL_COLUMNS} FROM calls WHERE call_control_id = %s",
                (call_control_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            cursor = await conn.execute(
                f"SELECT {sql.SEGMENT_COLUMNS} FROM segments WHERE call_control_id = %s ORDER BY occurred_at, track, event_id",
                (call_control_id,),
            )
            segments = [sql.segment_from_row(r, _same) for r in await cursor.fetchall()]
            cursor = await conn.execute(
                f"SELECT {sql.SEGMENT_COLUMNS} FROM partials WHERE call_control_id = %s ORDER BY occurred_at, track",
                (call_control_id,),
            )
            partials = [sql.segment_from_row(r, _same) for r in await cursor.fetchall()]
            return Transcript(sql.call_from_row(row, _same), segments, partials)

        return await self._transaction(work)

    async def search(self, query: Node, limit: int, offset: int) -> list[SearchHit]:
        statement = """
            SELECT s.call_control_id, s.event_id, s.occurred_at, s.track,
                   ts_headline('simple', s.text, q.q, %s), ts_rank_cd(s.tsv, q.q) AS score
            FROM segments s, to_tsquery('simple', %s) AS q(q)
            WHERE s.tsv @@ q.q
            ORDER BY score DESC, s.id
            LIMIT %s OFFSET %s
        """
        options = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=16, MinWords=8"
        rows = await self._fetch(statement, (options, to_tsquery(query), limit, offset))
        return [SearchHit(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]

    async def due_completions(self, quiet_since: datetime, limit: int) -> list[DueCompletion]:
        return [
            DueCompletion(*row) for row in await self._fetch(DUE_COMPLETIONS, (quiet_since, limit))
        ]

    async def mark_completed(
        self, call_control_id: str, revision: int, segment_seq: int, now: datetime
    ) -> None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                MARK_COMPLETED, (now, revision, segment_seq, call_control_id, revision)
            )

        await self._transaction(work)

    async def calls_of_numbers(self, numbers: tuple[str, ...]) -> list[str]:
        clause, values = sql.numbers_clause(numbers, "%s")
        statement = f"SELECT call_control_id FROM calls WHERE {clause} ORDER BY call_control_id"
        return [row[0] for row in await self._fetch(statement, values)]

    async def ended_before(self, before: datetime, limit: int) -> list[str]:
        return [row[0] for row in await self._fetch(ENDED_BEFORE, (before, limit))]

    async def erase_calls(self, call_control_ids: list[str]) -> dict[str, int]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
            counts = {kind: 0 for kind, _ in sql.ERASE_STATEMENTS}
            if not call_control_ids:
                return counts
            # the calls' rows first, in sorted order: the lock order of a batch's upsert
            await conn.execute(
                "SELECT 1 FROM calls WHERE call_control_id = ANY(%s) ORDER BY call_control_id FOR UPDATE",
                (sorted(call_control_ids),),
            )
            for kind, statement in sql.ERASE_STATEMENTS:
                cursor = await conn.execute(
                    statement.format(ids="SELECT unnest(%s::text[])"), (call_control_ids,)
                )
                counts[kind] = cursor.rowcount
            return counts

        return await self._transaction(work)
