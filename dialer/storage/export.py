"""CDR export as CSV or JSON, streamed row by row. CDRs hold lead ids, never numbers, so exports carry none."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TextIO

from dialer.storage.models import CDR_COLUMNS, Cdr

FORMATS = ("csv", "json")


def cdr_record(cdr: Cdr) -> dict[str, object]:
    """JSON-ready values: times as ISO 8601 UTC, absent values as None."""
    record: dict[str, object] = {}
    for column in CDR_COLUMNS:
        value = getattr(cdr, column)
        record[column] = value.isoformat() if isinstance(value, datetime) else value
    return record


async def write_cdrs(cdrs: AsyncIterator[Cdr], stream: TextIO, format: str) -> int:
    """Write every CDR to `stream`; returns how many. JSON is one array of objects; CSV has a header row."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    count = 0
    if format == "csv":
        writer = csv.DictWriter(stream, fieldnames=CDR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        async for cdr in cdrs:
            writer.writerow({k: "" if v is None else v for k, v in cdr_record(cdr).items()})
            count += 1
        return count
    stream.write("[")
    async for cdr in cdrs:
        stream.write(("," if count else "") + "\n" + json.dumps(cdr_record(cdr), ensure_ascii=False))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count
