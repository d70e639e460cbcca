"""Lead lists from CSV: a header row names the columns; `number` is required, every other column is kept as a
lead field (`priority`, if present, must be an integer). Each bad row is reported as `line N: <column>: <why>` and
skipped; good rows are stored; numbers already in the campaign are counted as duplicates and left untouched, so
importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import phonenumbers
from phonenumbers import NumberParseException

from compliance.numbers import InvalidNumber, ParsedNumber, normalize
from dialer.storage import NewLead, Store

NUMBER_COLUMN = "number"
PRIORITY_COLUMN = "priority"
IMPORT_BATCH_ROWS = 500


def normalize_number(raw: str, default_region: str | None = None) -> ParsedNumber:
    """compliance.numbers.normalize, with a hint for the commonest mistake in a lead list: national numbers
    and no region to read them in."""
    try:
        return normalize(raw, default_region)
    except InvalidNumber as exc:
        if default_region is None and "default region" in exc.reason:
            raise InvalidNumber(f"{exc.reason} Write it as +CC... or pass --default-region.") from None
        raise


def region_of(e164: str) -> str | None:
    """The region of a full international number (used to default a campaign's region from its caller ID)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return None


class LeadFileError(ValueError):
    """The file as a whole cannot be read as a lead list (no header, no number column)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}"


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def __str__(self) -> str:
        return f"imported {self.imported}, duplicates {self.duplicates}, rejected {self.rejected}"


def _undecodable(text: str) -> bool:
    """True when the file held bytes that are not UTF-8 (read with surrogateescape, they become lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_header(reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("line 1: header: the file is empty; the first row must name the columns") from None
    except csv.Error as exc:
        raise LeadFileError(f"line 1: header: {exc}") from None
    names = [name.strip().lower() for name in header]
    if any(_undecodable(name) for name in names):
        raise LeadFileError("line 1: header: not valid UTF-8 text")
    if NUMBER_COLUMN not in names:
        raise LeadFileError(
            f"line 1: header: no {NUMBER_COLUMN!r} column (found: {', '.join(n or '(blank)' for n in names)})"
        )
    seen: set[str] = set()
    for name in names:
        if not name:
            raise LeadFileError("line 1: header: a column has no name")
        if name in seen:
            raise LeadFileError(f"line 1: header: column {name!r} appears twice")
        seen.add(name)
    return names


def _lead_from_row(line: int, names: list[str], row: list[str], default_region: str | None) -> NewLead | RowError:
    if len(row) != len(names):
        return RowError(line, "row", f"expected {len(names)} columns as in the header, found {len(row)}")
    values = dict(zip(names, row))
    for name, value in values.items():
        if _undecodable(value):
            return RowError(line, name, "not valid UTF-8 text")
    raw = values.pop(NUMBER_COLUMN)
    try:
        parsed = normalize_number(raw, default_region)
    except InvalidNumber as exc:
        return RowError(line, NUMBER_COLUMN, str(exc))
    priority = 0
    if PRIORITY_COLUMN in values:
        text = values.pop(PRIORITY_COLUMN).strip()
        try:
            priority = int(text) if text else 0
        except ValueError:
            return RowError(line, PRIORITY_COLUMN, "not an integer")
    return NewLead(e164=parsed.e164, raw_number=raw.strip(), time_zones=parsed.time_zones, priority=priority,
                   fields=values)


def iter_leads(stream: TextIO, default_region: str | None = None) -> Iterator[NewLead | RowError]:
    """Each data row as a NewLead or the RowError saying why it was refused; raises LeadFileError for the header.

    `stream` should be opened with newline="" and errors="surrogateescape" (see open_lead_file)."""
    reader = csv.reader(stream)
    names = _read_header(reader)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(line, "row", f"unreadable CSV: {exc}")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        yield _lead_from_row(line, names, row, default_region)


def open_lead_file(path: Path | str) -> TextIO:
    """UTF-8 (a BOM is skipped); bytes that are not UTF-8 are kept so the row holding them can be reported."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


async def import_leads(
    store: Store, campaign: str, stream: TextIO, now: datetime, *, default_region: str | None = None
) -> ImportSummary:
    """Store the good rows (in batches, so a huge file never sits in memory) and collect the bad ones."""
    summary = ImportSummary()
    batch: list[NewLead] = []

    async def flush() -> None:
        result = await store.add_leads(campaign, batch, now)
        summary.imported += result.imported
        summary.duplicates += result.duplicates
        batch.clear()

    for item in iter_leads(stream, default_region):
        if isinstance(item, RowError):
            summary.errors.append(item)
            continue
        batch.append(item)
        if len(batch) >= IMPORT_BATCH_ROWS:
            await flush()
    if batch:
        await flush()
    return summary
