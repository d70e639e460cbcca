"""Command-line options that choose the database: --db DSN, else --config FILE's node.database, else the default."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from dialer.config import DialerConfig, NodeSettings, load_config


@dataclass(frozen=True, slots=True)
class DatabaseChoice:
    dsn: str
    node: str
    config: DialerConfig | None


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
