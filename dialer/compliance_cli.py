"""Helpers shared by the compliance officer's CLI commands (dialer/commands/{check,attempts,dnc,consent,audit,callerid,recordings}.py)."""

from __future__ import annotations

import asyncio
import csv
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from compliance.ledger import Ledger, LedgerError, open_ledger
from compliance.numbers import InvalidNumber, normalize

DEMO_DB = "sqlite:///var/demo.db"
EXIT_BAD_INPUT = 2


class BadInput(ValueError):
    """Input the command cannot use; printed to stderr, exit code 2."""


def add_db_argument(parser) -> None:
    parser.add_argument("--db", default=DEMO_DB, help=f"ledger: SQLite path, sqlite:///PATH or postgresql://DSN (default {DEMO_DB})")


def parse_instant(text: str, field: str = "--at") -> datetime:
    """ISO 8601 with an offset (or Z); a naive time is refused because it has no defined instant."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadInput(f"{field}: {text!r} is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        raise BadInput(f"{field}: {text!r} has no UTC offset; add Z or +HH:MM")
    return value.astimezone(timezone.utc)


def parse_number(text: str, field: str = "--number") -> str:
    try:
        return normalize(text).e164
    except InvalidNumber as exc:
        raise BadInput(f"{field}: {exc.reason}") from exc


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def run_with_ledger(db: str, action) -> int:
    """Open the ledger, run `await action(ledger)`, close; BadInput and ledger errors -> stderr, exit 2."""

    async def main() -> int:
        ledger: Ledger = await open_ledger(db, pool_size=1)
        try:
            return int(await action(ledger) or 0)
        finally:
            await ledger.close()

    try:
        return asyncio.run(main())
    except (BadInput, LedgerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


@dataclass(frozen=True, slots=True)
class CsvLine:
    line: int
    values: dict[str, str]


def read_csv(path: str, required: tuple[str, ...]) -> list[CsvLine]:
    """Rows of a CSV file with a header line; a missing required column is a BadInput naming it."""
    try:
        handle = open(Path(path), newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            raise BadInput(f"{path}: line 1: header lacks column(s) {', '.join(missing)} (has: {', '.join(header) or 'nothing'})")
        return [
            CsvLine(reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None})
            for row in reader
        ]


def report_import(path: str, kept: int, new: int, problems: list[str]) -> int:
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    print(f"{path}: {kept} valid lines ({new} new), {len(problems)} rejected")
    return EXIT_BAD_INPUT if problems else 0
