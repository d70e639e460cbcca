"""Command-line options that choose the database: --db DSN, else --config FILE's node.database, else the default."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from dialer.config import DialerConfig, NodeSettings, load_config
from dialer.storage import Store, open_node_store

Result = TypeVar("Result")


class DatabaseUnavailable(Exception):
    """The database could not be opened; the message names it (without its password) and why."""


@dataclass(frozen=True, slots=True)
class DatabaseChoice:
    dsn: str
    node: str
    config: DialerConfig | None

    @property
    def settings(self) -> NodeSettings:
        return self.config.node if self.config else NodeSettings()


def add_database_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="use this configuration's node.database (and its campaigns)")
    where.add_argument("--db", metavar="DSN", help="sqlite:///PATH or postgresql://...")


def database_from_args(args: argparse.Namespace) -> DatabaseChoice:
    """Raises ConfigError when --config names an invalid file."""
    if args.db:
        return DatabaseChoice(args.db, "cli", None)
    if args.config:
        config = load_config(args.config)
        return DatabaseChoice(config.node.database, config.node.name, config)
    defaults = NodeSettings()
    return DatabaseChoice(defaults.database, defaults.name, None)


def without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def with_store(choice: DatabaseChoice, action: Callable[[Store], Awaitable[Result]]) -> Result:
    """Open the chosen store, run `action` on it, close it."""
    try:
        store = await open_node_store(choice.settings, dsn=choice.dsn, node=choice.node)
    except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise DatabaseUnavailable(f"database {without_password(choice.dsn)}: {exc}") from None
    try:
        return await action(store)
    finally:
        await store.close()
