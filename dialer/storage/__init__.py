"""Engine storage: one `Store` interface, SQLite (embedded default) and PostgreSQL (several nodes) behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dialer.storage.base import Store
from dialer.storage.models import AddLeadsResult, Campaign, Cdr, Disposition, Lead, NewLead

if TYPE_CHECKING:
    from dialer.config import NodeSettings

__all__ = [
    "AddLeadsResult", "Campaign", "Cdr", "Disposition", "Lead", "NewLead", "Store", "open_node_store", "open_store",
]


async def open_store(
    dsn: str,
    *,
    node: str = "node1",
    busy_timeout_s: float = 5.0,
    pool_max_size: int = 10,
    sqlite_synchronous: str = "NORMAL",
) -> Store:
    """Open (and migrate to the latest schema) the store at `dsn`:
    "sqlite:///relative/path.db", "sqlite:////absolute/path.db" or "postgresql://user@host:port/db"."""
    scheme = urlsplit(dsn).scheme
    if scheme == "sqlite":
        from dialer.storage.sqlite import SqliteStore

        path = dsn[len("sqlite:///"):] if dsn.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"sqlite DSN must be sqlite:///PATH, got {dsn!r}")
        return await SqliteStore.open(path, node=node, busy_timeout_s=busy_timeout_s, synchronous=sqlite_synchronous)
    if scheme in ("postgresql", "postgres"):
        from dialer.storage.postgres import PostgresStore

        return await PostgresStore.open(dsn, node=node, pool_max_size=pool_max_size)
    raise ValueError(f"unsupported database {dsn!r}: use sqlite:///PATH or postgresql://...")


async def open_node_store(settings: "NodeSettings", *, dsn: str | None = None, node: str | None = None) -> Store:
    """The store a node's configuration describes (node.database and its tuning); dsn/node override them."""
    return await open_store(
        dsn or settings.database,
        node=node or settings.name,
        busy_timeout_s=settings.database_busy_timeout_s,
        pool_max_size=settings.database_pool_max_size,
        sqlite_synchronous=settings.database_synchronous,
    )
