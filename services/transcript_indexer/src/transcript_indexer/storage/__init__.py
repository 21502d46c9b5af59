"""Storage of calls, segments and partials behind one interface, in SQLite or PostgreSQL."""

import asyncio
import logging
from pathlib import Path

from transcript_indexer.storage.base import Storage, StorageUnavailable
from voicetap_sdk.backoff import Backoff

log = logging.getLogger("voicetap.transcript_indexer.storage")


def sqlite_path(database_url: str, data_dir: Path) -> Path | None:
    """The SQLite file ``database_url`` names (empty: ``transcripts.sqlite3`` under ``data_dir``),
    or ``None`` when it names PostgreSQL; ``ValueError`` for anything else."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return None
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///"))
    if database_url:
        raise ValueError(f"must be postgresql://... or sqlite:///..., not {database_url!r}")
    return data_dir / "transcripts.sqlite3"


def create_storage(
    database_url: str, data_dir: Path, *, sqlite_busy_timeout_ms: int, pg_pool_size: int
) -> Storage:
    """The back end ``database_url`` names (not yet opened); PostgreSQL is imported only when used."""
    path = sqlite_path(database_url, data_dir)
    if path is None:
        from transcript_indexer.storage.postgres import PostgresStorage

        return PostgresStorage(database_url, pg_pool_size)
    from transcript_indexer.storage.sqlite import SqliteStorage

    return SqliteStorage(path, sqlite_busy_timeout_ms)


async def open_when_available(storage: Storage, stop: asyncio.Event) -> bool:
    """Open (and migrate) the database, waiting out an outage; false when stopped first."""
    backoff = Backoff("database", log, first=0.5, cap=10.0)
    while not stop.is_set():
        try:
            await storage.open()
        except StorageUnavailable as exc:
            await backoff.failed(exc, stop)
        else:
            backoff.succeeded()
            return True
    return False
