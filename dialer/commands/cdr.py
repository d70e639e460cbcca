"""`dialer cdr export --format csv|json [--campaign NAME] [--since ISO] [--output FILE]`."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dialer.config import ConfigError
from dialer.storage.export import FORMATS, write_cdrs
from dialer.storage.options import DatabaseUnavailable, add_database_options, database_from_args, with_store

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

    def export(stream) -> int:
        return asyncio.run(with_store(
            choice, lambda store: write_cdrs(store.export_cdrs(campaign=args.campaign, since=since), stream, args.format)
        ))

    try:
        if not args.output:
            export(sys.stdout)
            return 0
        count = _export_to_file(Path(args.output), export)
    except DatabaseUnavailable as exc:
        print(f"dialer cdr export: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as exc:
        print(f"dialer cdr export: --output: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"{count} CDRs written to {args.output}", file=sys.stderr)
    return 0


def _export_to_file(target: Path, export) -> int:
    """Write to a temporary file beside the target and rename it, so a failed export never leaves half a file."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            count = export(stream)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return count
