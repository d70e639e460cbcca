"""The demo's lead list: numbers spread over several countries and time zones, written as a CSV and imported the
way a user's list is (so one bad row is reported by line), plus one number on the do-not-call list."""

from __future__ import annotations

import io
import random

from compliance.numbers import InvalidNumber, normalize

# (label, pattern): national ranges set aside for drama/fiction where the numbering plan has one.
REGIONS = (
    ("US Eastern", "+1212555{:04d}"),
    ("US Central", "+1312555{:04d}"),
    ("US Pacific", "+1213555{:04d}"),
    ("US Hawaii", "+1808555{:04d}"),
    ("UK", "+4420794{:05d}"),
    ("India", "+9198100{:05d}"),
    ("China", "+8613800{:06d}"),
    ("Australia", "+6125550{:04d}"),
)
INVALID_ROW = "+1555"  # too short for any plan: reported by line at import


def demo_lead_csv(per_region: int, seed: int) -> str:
    """A CSV (header `number,region`) with per_region valid numbers of each region, interleaved, plus one bad row."""
    rng = random.Random(seed)
    columns: list[list[tuple[str, str]]] = []
    for label, pattern in REGIONS:
        numbers: list[tuple[str, str]] = []
        for index in rng.sample(range(100, 9999), min(9899, per_region * 4)):
            try:
                numbers.append((normalize(pattern.format(index)).e164, label))
            except InvalidNumber:
                continue
            if len(numbers) == per_region:
                break
        columns.append(numbers)
    rows = [row for group in zip(*columns) for row in group]
    rows.insert(min(5, len(rows)), (INVALID_ROW, "nowhere"))
    out = io.StringIO()
    out.write("number,region\n")
    for number, label in rows:
        out.write(f"{number},{label}\n")
    return out.getvalue()
