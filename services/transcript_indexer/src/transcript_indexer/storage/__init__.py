"""Storage of calls, segments and partials behind one interface, in SQLite or PostgreSQL."""

from transcript_indexer.settings import IndexerSettings
from transcript_indexer.storage.base import Storage


def create_storage(settings: IndexerSettings) -> Storage:
    """The back end ``settings`` name (not yet opened); PostgreSQL is imported only when used."""
    path = settings.sqlite_path()
    if path is None:
        from transcript_indexer.storage.postgres import PostgresStorage

        return PostgresStorage(settings.indexer_database_url, settings.indexer_pg_pool_size)
    from transcript_indexer.storage.sqlite import SqliteStorage

    return SqliteStorage(path, settings.indexer_sqlite_busy_timeout_ms)
