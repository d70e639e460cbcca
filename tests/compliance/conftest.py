"""Ledger fixtures: the same tests run against SQLite and PostgreSQL (own database, a fresh schema per test)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from compliance.ledger_postgres import PostgresLedger
from compliance.ledger_sqlite import SqliteLedger

TEST_DATABASE = "dialer_compliance_test"


async def ensure_database(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEST_DATABASE):
            try:
                await conn.execute(f"CREATE DATABASE {TEST_DATABASE}")
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + "/" + TEST_DATABASE


@pytest.fixture
async def compliance_pg(postgres_dsn):
    """(dsn, schema) of a fresh schema in the compliance test database; dropped afterwards."""
    dsn = await ensure_database(postgres_dsn)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield dsn, schema
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
async def sqlite_ledger(tmp_path):
    opened = await SqliteLedger.open(str(tmp_path / "ledger.db"))
    yield opened
    await opened.close()


@pytest.fixture
async def postgres_ledger(compliance_pg):
    dsn, schema = compliance_pg
    opened = await PostgresLedger.open(dsn, pool_size=4, schema=schema)
    yield opened
    await opened.close()


@pytest.fixture
def ledger(backend, request):
    return request.getfixturevalue(f"{backend}_ledger")
