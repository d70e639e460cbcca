"""Every storage test runs against both backends: SQLite in a temporary file and PostgreSQL in a fresh schema
of this suite's own database (dialer_store_test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from dialer.storage import Store, open_store

TEST_DATABASE = "dialer_store_test"


def with_database(dsn: str, database: str, query: str = "") -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, query, ""))


async def _create_database(server_dsn: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEST_DATABASE):
            try:
                await connection.execute(f"CREATE DATABASE {TEST_DATABASE}")
            except asyncpg.DuplicateDatabaseError:
                pass  # another test run created it in between
    finally:
        await connection.close()


_database_ready = False


async def postgres_test_database(server_dsn: str) -> str:
    global _database_ready
    if not _database_ready:
        await _create_database(server_dsn)
        _database_ready = True
    return with_database(server_dsn, TEST_DATABASE)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_dsn(request, tmp_path) -> AsyncIterator[str]:
    """A DSN to an empty database of either backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dialer.db'}"
        return
    database_dsn = await postgres_test_database(request.getfixturevalue("postgres_dsn"))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_dsn)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_database(database_dsn, TEST_DATABASE, f"search_path={schema}")
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


StoreOpener = Callable[..., Awaitable[Store]]


@pytest.fixture
async def open_test_store(store_dsn: str) -> AsyncIterator[StoreOpener]:
    """Opens stores on the test database (as many as a test wants, e.g. two nodes); closes them afterwards."""
    opened: list[Store] = []

    async def opener(node: str = "node1") -> Store:
        store = await open_store(store_dsn, node=node)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_test_store: StoreOpener) -> Store:
    return await open_test_store()
