"""Property: the hopper hands out exactly the due leads, highest priority first, then earliest due, then oldest,
whatever the mix and however the claims are sized; leads not yet due stay put."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.storage import NewLead, open_store

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

lead_specs = st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 5)), min_size=1, max_size=30)
claim_sizes = st.lists(st.integers(1, 7), min_size=1, max_size=10)


async def scenario(path: Path, specs: list[tuple[int, int]], sizes: list[int]) -> tuple[list[int], list[int]]:
    store = await open_store(f"sqlite:///{path}")
    try:
        model = []
        for index, (priority, due_minutes) in enumerate(specs):
            due = NOW + timedelta(minutes=due_minutes)
            await store.add_leads("c", [NewLead(e164=f"+1202555{index:04d}", raw_number="x", priority=priority)], due)
            model.append((-priority, due, index + 1, due <= NOW))
        expected = [lead_id for _, _, lead_id, is_due in sorted(model) if is_due]
        claimed: list[int] = []
        size_cycle = iter(sizes * (len(specs) + 1))
        while batch := await store.claim_leads("c", NOW, next(size_cycle)):
            claimed.extend(lead.id for lead in batch)
        return claimed, expected
    finally:
        await store.close()


@settings(max_examples=40, deadline=None)
@given(specs=lead_specs, sizes=claim_sizes)
def test_claims_follow_priority_then_due_time(specs, sizes):
    with tempfile.TemporaryDirectory() as directory:
        claimed, expected = asyncio.run(scenario(Path(directory) / "hopper.db", specs, sizes))
    assert claimed == expected
