"""Concurrency proof: several OS processes, many tasks each, reserving the same numbers at once.

No cap is ever exceeded: every window of the recorded attempts is checked afterwards, and the audit chain
still verifies.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import random
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.audit import verify_rows
from compliance.gate import CampaignContext, Gate
from compliance.ledger import from_us
from compliance.ledger_postgres import PostgresLedger
from compliance.ledger_sqlite import SqliteLedger
from compliance.packs import load_pack
from compliance.settings import CampaignCompliance, effective_rules

NUMBERS = [f"+1202555{i:04d}" for i in range(6)]
CAMPAIGNS = ("a", "b")
BASE = datetime(2026, 6, 8, 13, 0, tzinfo=timezone.utc)  # 09:00 in New York, a Monday
CAPS_24H, CAPS_7D, CAMPAIGN_PER_DAY = 3, 5, 2


def rules():
    overrides = CampaignCompliance(
        rule_pack="us", caps_per_number={"rolling_24h": CAPS_24H, "rolling_7d": CAPS_7D},
        caps_per_campaign={"calendar_day": CAMPAIGN_PER_DAY},
    )
    return effective_rules(load_pack("us"), overrides)


async def _hammer(gate: Gate, seed: int, tasks: int, per_task: int) -> int:
    campaigns = {name: CampaignContext(name, "+12025550199", rules()) for name in CAMPAIGNS}

    async def task(index: int) -> int:
        rng = random.Random(seed * 1000 + index)
        allowed = 0
        for _ in range(per_task):
            at = BASE + timedelta(days=rng.randrange(9), minutes=rng.randrange(0, 11 * 60, 7))
            decision = await gate.reserve(rng.choice(NUMBERS), campaigns[rng.choice(CAMPAIGNS)], at)
            allowed += decision.allowed
        return allowed

    return sum(await asyncio.gather(*(task(i) for i in range(tasks))))


def worker(dsn: str, schema: str | None, seed: int, tasks: int, per_task: int, pool_size: int) -> int:
    async def run() -> int:
        if schema is None:
            gate = await Gate.open(dsn)
        else:
            gate = Gate(await PostgresLedger.open(dsn, pool_size=pool_size, schema=schema))
        try:
            return await _hammer(gate, seed, tasks, per_task)
        finally:
            await gate.close()

    return asyncio.run(run())


def run_processes(dsn: str, schema: str | None, processes: int, tasks: int, per_task: int, pool_size: int = 1) -> int:
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(worker, dsn, schema, seed, tasks, per_task, pool_size) for seed in range(processes)]
        return sum(f.result(timeout=120) for f in futures)


def assert_no_cap_exceeded(attempts: list[tuple[str, str, int]]) -> None:
    from zoneinfo import ZoneInfo

    by_number = defaultdict(list)
    for number, campaign, at_us in attempts:
        by_number[number].append((from_us(at_us), campaign))
    new_york = ZoneInfo("America/New_York")
    for number, rows in by_number.items():
        times = sorted(at for at, _ in rows)
        for start in times:
            assert sum(1 for t in times if start <= t < start + timedelta(hours=24)) <= CAPS_24H, number
            assert sum(1 for t in times if start <= t < start + timedelta(days=7)) <= CAPS_7D, number
        per_day = defaultdict(int)
        for at, campaign in rows:
            per_day[(campaign, at.astimezone(new_york).date())] += 1
        assert max(per_day.values()) <= CAMPAIGN_PER_DAY, number


async def test_four_sqlite_processes_never_exceed_any_cap(tmp_path):
    path = str(tmp_path / "shared.db")
    gate = await Gate.open(f"sqlite:///{path}")  # create the schema once before the race
    await gate.close()
    allowed = await asyncio.to_thread(run_processes, f"sqlite:///{path}", None, 4, 12, 15)
    gate = await Gate.open(f"sqlite:///{path}")
    try:
        rows = await gate.ledger._run(lambda: gate.ledger._db.execute("SELECT number, campaign, at_us FROM attempts").fetchall())
        assert len(rows) == allowed > 0
        assert_no_cap_exceeded(rows)
        audit = await gate.ledger.audit_rows()
        assert sum(1 for r in audit if r.kind == "reserve") == 4 * 12 * 15
        assert verify_rows(audit, await gate.ledger.audit_heads()) == []
    finally:
        await gate.close()


async def test_postgres_eight_connections_in_two_processes_never_exceed_any_cap(compliance_pg):
    dsn, schema = compliance_pg
    ledger = await PostgresLedger.open(dsn, pool_size=1, schema=schema)
    await ledger.close()
    allowed = await asyncio.to_thread(run_processes, dsn, schema, 2, 16, 15, 4)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        rows = [tuple(r) for r in await conn.fetch("SELECT number, campaign, at_us FROM attempts")]
    finally:
        await conn.close()
    assert len(rows) == allowed > 0
    assert_no_cap_exceeded(rows)
    ledger = await PostgresLedger.open(dsn, pool_size=1, schema=schema)
    try:
        audit = await ledger.audit_rows()
        assert sum(1 for r in audit if r.kind == "reserve") == 2 * 16 * 15
        assert verify_rows(audit, await ledger.audit_heads()) == []
    finally:
        await ledger.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=8),  # day
            st.integers(min_value=0, max_value=11 * 60),  # minutes after 09:00 New York
            st.sampled_from(NUMBERS[:2]),
            st.sampled_from(CAMPAIGNS),
        ),
        min_size=1, max_size=40,
    ),
    batch_sizes=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=10),
)
def test_property_ledger_never_exceeds_a_cap_for_any_order_and_grouping_of_reservations(requests, batch_sizes):
    """Out-of-order instants and arbitrary groups of simultaneous reservations (one group commit each)."""

    async def run() -> list[tuple]:
        ledger = await SqliteLedger.open(":memory:")
        gate = Gate(ledger)
        campaigns = {name: CampaignContext(name, "+12025550199", rules()) for name in CAMPAIGNS}
        start = 0
        for size in itertools.cycle(batch_sizes):
            if start >= len(requests):
                break
            group, start = requests[start : start + size], start + size
            await asyncio.gather(
                *(gate.reserve(n, campaigns[c], BASE + timedelta(days=d, minutes=m)) for d, m, n, c in group)
            )
        rows = await ledger._run(lambda: ledger._db.execute("SELECT number, campaign, at_us FROM attempts").fetchall())
        await gate.close()
        return rows

    assert_no_cap_exceeded(asyncio.run(run()))
