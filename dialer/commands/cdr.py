"""`dialer cdr export --format csv|json [--campaign NAME] [--since ISO] [--output FILE]`."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dialer.config import ConfigError
from dialer.storage import open_store
from dialer.storage.export import FORMATS, write_cdrs
from dialer.storage.options import add_database_options, database_from_args

EXIT_UNUSABLE = 2


def register(subparsers) -> None:
    cdr = subparsers.add_parser("cdr", help="call detail records")
    actions = cdr.add_subparsers(dest="cdr_action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="export CDRs in start order")
    export.add_argument("--format", choices=FORMATS, required=True)
    export.add_argument("--campaign", help="only this campaign's calls")
    export.add_argument("--since", metavar="ISO", help="only calls started at or after this time (no zone: UTC)")
    export.add_argument("--output", metavar="FILE", help="write here (replaced whole, never half-written)")
    add_database_options(export)
    export.set_defaults(handler=run_export)


def parse_since(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def run_export(args) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        print(f"dialer cdr export: --since: {args.since!r} is not an ISO 8601 time (e.g. 2026-03-02T09:00:00Z)",
              file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        choice = database_from_args(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNUSABLE

    async def export(stream) -> int:
        store = await open_store(choice.dsn, node=choice.node)
        try:
            return await write_cdrs(store.export_cdrs(campaign=args.campaign, since=since), stream, args.format)
        finally:
            await store.close()

    if not args.output:
        asyncio.run(export(sys.stdout))
        return 0
    target = Path(args.output)
    handle, temporary = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            count = asyncio.run(export(stream))
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    print(f"{count} CDRs written to {target}", file=sys.stderr)
    return 0
