"""Storage fixtures: a fresh SQLite file per test, and a throwaway PostgreSQL database per session."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.system_parts import missing
from transcript_indexer.storage.base import Storage
from transcript_indexer.storage.postgres import PostgresStorage
from transcript_indexer.storage.sqlite import SqliteStorage

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return os.environ.get("VOICETAP_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A database created for this test session and dropped after it."""
    name = f"voicetap_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(postgres_admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        missing(
            f"PostgreSQL at {postgres_admin_url}",
            f"start one, or set VOICETAP_TEST_POSTGRES_URL ({exc})",
        )
    try:
        yield _with_database(postgres_admin_url, name)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('calls') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute("TRUNCATE calls, segments, partials")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against each back end, each time on empty tables."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'transcripts.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    store: Storage
    if database_url.startswith("sqlite:///"):
        store = SqliteStorage(Path(database_url.removeprefix("sqlite:///")))
    else:
        store = PostgresStorage(database_url, pool_size=2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
