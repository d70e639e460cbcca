"""The storage contract, run identically against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import dialer.storage.base
import dialer.storage.migrations
from dialer.storage import NewLead, Store, open_store
from dialer.storage.migrations import LATEST_VERSION

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def leads(*numbers: str, priority: int = 0) -> list[NewLead]:
    return [
        NewLead(e164=n, raw_number=n.replace("+1", "("), time_zones=("America/New_York",), priority=priority,
                fields={"name": f"lead {n[-4:]}"})
        for n in numbers
    ]


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+1202555{index:04d}" for index in range(start, start + count)]


async def test_migrations_reach_latest_version_and_reopen_without_reapplying(store_dsn, open_test_store):
    first = await open_test_store()
    assert await first.schema_version() == LATEST_VERSION
    await first.add_leads("c", leads("+12025550100"), T0)
    second = await open_test_store()  # a restart: migrations must be a no-op and keep data
    assert await second.schema_version() == LATEST_VERSION
    assert (await second.count_leads("c"))["new"] == 1


async def test_open_store_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="unsupported database"):
        await open_store("mysql://localhost/db")
    with pytest.raises(ValueError, match="sqlite:///PATH"):
        await open_store("sqlite://")


async def test_campaign_state_upsert(store: Store):
    assert await store.get_campaign("spring") is None
    await store.set_campaign_state("spring", "running", T0)
    await store.set_campaign_state("spring", "paused", T0 + timedelta(minutes=1))
    await store.set_campaign_state("autumn", "stopped", T0)
    campaign = await store.get_campaign("spring")
    assert (campaign.state, campaign.updated_at) == ("paused", T0 + timedelta(minutes=1))
    assert [c.name for c in await store.list_campaigns()] == ["autumn", "spring"]
    with pytest.raises(ValueError, match="campaign state must be one of"):
        await store.set_campaign_state("spring", "dialling", T0)
    assert (await store.get_campaign("spring")).state == "paused"


async def test_add_leads_deduplicates_per_campaign_and_keeps_the_stored_lead(store: Store):
    first = await store.add_leads("c", leads("+12025550100", "+12025550101"), T0)
    assert (first.imported, first.duplicates) == (2, 0)
    [claimed] = await store.claim_leads("c", T0, 1)
    await store.schedule_lead(claimed.id, T0 + timedelta(hours=2), attempted=True)

    again = await store.add_leads("c", leads("+12025550100", "+12025550101", "+12025550102", "+12025550102"), T0)
    assert (again.imported, again.duplicates) == (1, 3)
    kept = await store.get_lead(claimed.id)
    assert (kept.status, kept.attempts, kept.next_attempt_at) == ("scheduled", 1, T0 + timedelta(hours=2))
    other_campaign = await store.add_leads("d", leads("+12025550100"), T0)
    assert other_campaign.imported == 1


async def test_lead_round_trips_every_field(store: Store):
    await store.add_leads("c", leads("+12025550100", priority=3), T0)
    [lead] = await store.list_leads("c")
    assert (lead.campaign, lead.e164, lead.raw_number, lead.time_zones) == (
        "c", "+12025550100", "(2025550100", ("America/New_York",))
    assert (lead.status, lead.attempts, lead.priority, lead.fields) == ("new", 0, 3, {"name": "lead 0100"})
    assert lead.next_attempt_at == T0 and lead.claimed_by is None
    assert await store.get_lead(lead.id) == lead
    assert await store.get_lead(lead.id + 1000) is None


async def test_claim_takes_due_leads_by_priority_then_due_time_and_marks_them_dialing(store: Store):
    await store.add_leads("c", leads("+12025550100", "+12025550101"), T0)
    await store.add_leads("c", leads("+12025550102", priority=5), T0 + timedelta(minutes=1))
    await store.add_leads("c", leads("+12025550103"), T0 + timedelta(minutes=10))  # not due yet
    await store.add_leads("other", leads("+12025550104"), T0)

    claimed = await store.claim_leads("c", T0 + timedelta(minutes=2), 10)
    assert [lead.e164 for lead in claimed] == ["+12025550102", "+12025550100", "+12025550101"]
    assert all(lead.status == "dialing" and lead.claimed_by == "node1" for lead in claimed)
    assert await store.claim_leads("c", T0 + timedelta(minutes=2), 10) == []
    assert [lead.e164 for lead in await store.claim_leads("c", T0 + timedelta(minutes=10), 10)] == ["+12025550103"]
    assert await store.claim_leads("c", T0, 0) == []


async def test_claim_respects_the_limit(store: Store):
    await store.add_leads("c", leads(*numbers(5)), T0)
    assert len(await store.claim_leads("c", T0, 2)) == 2
    assert len(await store.claim_leads("c", T0, 10)) == 3


async def test_schedule_and_finish_move_leads_through_the_hopper(store: Store):
    await store.add_leads("c", leads(*numbers(3)), T0)
    first, second, third = await store.claim_leads("c", T0, 3)
    assert await store.schedule_lead(first.id, T0 + timedelta(minutes=10), attempted=True)
    assert await store.schedule_lead(second.id, T0 + timedelta(minutes=5), attempted=False)  # gate refusal
    assert await store.finish_lead(third.id, "closed", attempted=True)
    assert not await store.schedule_lead(999_999, T0, attempted=True)
    with pytest.raises(ValueError, match="status must be one of"):
        await store.finish_lead(first.id, "dialing", attempted=False)

    assert (await store.get_lead(first.id)).attempts == 1
    assert (await store.get_lead(second.id)).attempts == 0
    assert (await store.get_lead(third.id)).status == "closed"
    assert await store.claim_leads("c", T0 + timedelta(minutes=4), 10) == []
    assert [lead.id for lead in await store.claim_leads("c", T0 + timedelta(minutes=11), 10)] == [second.id, first.id]
    assert await store.finish_lead(first.id, "done", attempted=True)
    assert await store.count_leads("c") == {"new": 0, "scheduled": 0, "dialing": 1, "done": 1, "closed": 1}


async def test_release_dialing_leads_frees_only_the_crashed_nodes_claims(open_test_store):
    node_a, node_b = await open_test_store("a"), await open_test_store("b")
    await node_a.add_leads("c", leads(*numbers(4)), T0)
    claimed_a = await node_a.claim_leads("c", T0, 2)
    claimed_b = await node_b.claim_leads("c", T0, 2)
    await node_a.open_cdr("before-claim", "c", claimed_a[1].id, "t", T0 - timedelta(hours=1))  # an older call
    await node_a.open_cdr("crashed-call", "c", claimed_a[0].id, "t", T0 + timedelta(seconds=1))
    assert await node_b.release_dialing_leads("a") == 2
    released = [await node_b.get_lead(lead.id) for lead in claimed_a]
    assert all(lead.status == "scheduled" and lead.claimed_by is None for lead in released)
    assert [lead.next_attempt_at for lead in released] == [T0, T0]
    assert [lead.attempts for lead in released] == [1, 0]  # only the lead whose call had started counts it
    assert [(await node_b.get_lead(lead.id)).claimed_by for lead in claimed_b] == ["b", "b"]
    assert {lead.id for lead in await node_b.claim_leads("c", T0, 10)} == {lead.id for lead in claimed_a}


async def test_two_nodes_claiming_concurrently_never_claim_the_same_lead(open_test_store):
    node_a, node_b = await open_test_store("a"), await open_test_store("b")
    await node_a.add_leads("c", leads(*numbers(300)), T0)
    claimers = [("a", node_a), ("b", node_b), ("a", node_a), ("b", node_b)]
    claimed_by: dict[int, list[str]] = {}
    while True:
        # every round, four claims (two per node) are in flight at the same moment
        batches = await asyncio.gather(*(store.claim_leads("c", T0, 7) for _, store in claimers))
        if not any(batches):
            break
        for (node, _), batch in zip(claimers, batches):
            for lead in batch:
                claimed_by.setdefault(lead.id, []).append(node)
                assert lead.claimed_by == node
    assert len(claimed_by) == 300
    assert all(len(nodes) == 1 for nodes in claimed_by.values()), "a lead was claimed twice"
    per_node = {node: sum(1 for nodes in claimed_by.values() if nodes == [node]) for node in ("a", "b")}
    assert per_node["a"] > 0 and per_node["b"] > 0


async def test_cdr_lifecycle(store: Store):
    await store.open_cdr("call-1", "c", 7, "trunk-a", T0)
    live = await store.get_cdr("call-1")
    assert (live.node, live.ended_at, live.outcome, live.abandoned) == ("node1", None, None, False)
    await store.update_cdr("call-1", answered_at=T0 + timedelta(seconds=5), sip_code=200)
    await store.update_cdr("call-1", bridged_at=T0 + timedelta(seconds=6), agent_id="alice",
                           recording_path="var/recordings/call-1.wav")
    await store.close_cdr("call-1", T0 + timedelta(seconds=90), "answered", hangup_by="remote")
    cdr = await store.get_cdr("call-1")
    assert (cdr.campaign, cdr.lead_id, cdr.trunk, cdr.agent_id) == ("c", 7, "trunk-a", "alice")
    assert (cdr.started_at, cdr.answered_at, cdr.bridged_at, cdr.ended_at) == (
        T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=6), T0 + timedelta(seconds=90))
    assert (cdr.outcome, cdr.sip_code, cdr.abandoned, cdr.hangup_by) == ("answered", 200, False, "remote")
    assert cdr.recording_path == "var/recordings/call-1.wav"
    assert await store.get_cdr("nope") is None


async def test_cdr_errors_name_the_problem(store: Store):
    await store.open_cdr("call-1", "c", None, None, T0)
    with pytest.raises(ValueError, match="cannot set \\['outcome'\\]"):
        await store.update_cdr("call-1", outcome="answered")
    with pytest.raises(KeyError):
        await store.update_cdr("missing", sip_code=486)
    with pytest.raises(KeyError):
        await store.close_cdr("missing", T0, "busy")
    with pytest.raises(ValueError, match="outcome must be one of"):
        await store.close_cdr("call-1", T0, "hung up")
    assert (await store.get_cdr("call-1")).ended_at is None
    with pytest.raises(ValueError, match="naive datetime"):
        await store.open_cdr("call-2", "c", None, None, datetime(2026, 1, 1))


async def test_abandoned_cdr(store: Store):
    await store.open_cdr("call-1", "c", 1, "t", T0)
    await store.close_cdr("call-1", T0 + timedelta(seconds=9), "answered", sip_code=200, abandoned=True,
                          hangup_by="local")
    cdr = await store.get_cdr("call-1")
    assert (cdr.abandoned, cdr.sip_code) == (True, 200)


async def test_close_live_cdrs_closes_only_that_nodes_live_calls(open_test_store):
    node_a, node_b = await open_test_store("a"), await open_test_store("b")
    await node_a.open_cdr("a-live", "c", 1, "t", T0)
    await node_a.open_cdr("a-ended", "c", 2, "t", T0)
    await node_a.close_cdr("a-ended", T0 + timedelta(seconds=30), "busy", sip_code=486)
    await node_b.open_cdr("b-live", "c", 3, "t", T0)

    restart = T0 + timedelta(minutes=5)
    assert await node_a.close_live_cdrs("a", restart) == 1
    crashed = await node_a.get_cdr("a-live")
    assert (crashed.outcome, crashed.hangup_by, crashed.ended_at) == ("failed", "crash", restart)
    assert (await node_a.get_cdr("a-ended")).outcome == "busy"
    assert (await node_a.get_cdr("b-live")).ended_at is None


async def test_export_filters_by_campaign_and_since_in_start_order_across_pages(store: Store, monkeypatch):
    monkeypatch.setattr(dialer.storage.base, "EXPORT_PAGE_ROWS", 2)
    for index in range(7):
        await store.open_cdr(f"call-{index}", "even" if index % 2 == 0 else "odd", index, "t",
                             T0 + timedelta(minutes=10 - index))
    await store.open_cdr("call-same-time", "odd", 99, "t", T0 + timedelta(minutes=10 - 3))

    every = [cdr.call_id async for cdr in store.export_cdrs()]
    assert every == ["call-6", "call-5", "call-4", "call-3", "call-same-time", "call-2", "call-1", "call-0"]
    odd_recent = [cdr.call_id async for cdr in store.export_cdrs(campaign="odd", since=T0 + timedelta(minutes=7))]
    assert odd_recent == ["call-3", "call-same-time", "call-1"]


async def test_agent_sessions_and_dispositions(store: Store):
    await store.agent_login("alice", T0)
    second_login = await store.agent_login("alice", T0 + timedelta(minutes=1))  # closes the stale session
    await store.agent_login("bob", T0)
    assert isinstance(second_login, int)
    assert await store.open_agent_sessions() == ["alice", "bob"]
    assert await store.agent_logout("alice", T0 + timedelta(hours=1))
    assert not await store.agent_logout("alice", T0 + timedelta(hours=1))
    assert await store.open_agent_sessions() == ["bob"]

    await store.record_disposition("call-1", "bob", "sale", T0)
    await store.record_disposition("call-1", "bob", "callback", T0 + timedelta(seconds=20))
    disposition = await store.get_disposition("call-1")
    assert (disposition.disposition, disposition.created_at) == ("callback", T0 + timedelta(seconds=20))
    assert await store.get_disposition("call-2") is None


async def test_each_node_restores_only_its_own_open_agent_sessions(open_test_store):
    node_a, node_b = await open_test_store("a"), await open_test_store("b")
    await node_a.agent_login("alice", T0)
    await node_b.agent_login("bob", T0)
    assert await node_a.open_agent_sessions() == ["alice"]
    assert await node_b.open_agent_sessions() == ["bob"]
    await node_b.agent_login("alice", T0 + timedelta(minutes=5))  # alice moves to node b: her session on a ends
    assert await node_a.open_agent_sessions() == []
    assert await node_b.open_agent_sessions() == ["alice", "bob"]


async def test_nodes_starting_together_apply_each_migration_once(store_dsn):
    stores = await asyncio.gather(*(open_store(store_dsn, node=f"n{i}") for i in range(3)))
    try:
        assert [await s.schema_version() for s in stores] == [LATEST_VERSION] * 3
    finally:
        for s in stores:
            await s.close()


async def test_a_new_migration_step_is_applied_once_on_restart_and_keeps_data(store_dsn, open_test_store, monkeypatch):
    first = await open_test_store()
    await first.add_leads("c", leads("+12025550100"), T0)
    await first.close()

    added_step = (LATEST_VERSION + 1, ("CREATE TABLE migration_probe (id INTEGER PRIMARY KEY)",
                                        "INSERT INTO migration_probe (id) VALUES (1)"))
    monkeypatch.setattr(dialer.storage.migrations, "STEPS", dialer.storage.migrations.STEPS + (added_step,))
    upgraded = await open_test_store()
    assert await upgraded.schema_version() == LATEST_VERSION + 1
    again = await open_test_store()  # the step must not run twice (its INSERT would hit the primary key)
    assert await again.schema_version() == LATEST_VERSION + 1
    assert (await again.count_leads("c"))["new"] == 1


async def test_sqlite_durability_setting_is_applied_and_checked(tmp_path):
    from dialer.storage.sqlite import SqliteStore

    full = await open_store(f"sqlite:///{tmp_path / 'full.db'}", sqlite_synchronous="FULL")
    normal = await open_store(f"sqlite:///{tmp_path / 'normal.db'}")
    try:
        for store, expected in ((full, 2), (normal, 1)):  # SQLite reports FULL as 2, NORMAL as 1
            async with store._db.execute("PRAGMA synchronous") as cursor:
                assert (await cursor.fetchone())[0] == expected
            async with store._db.execute("PRAGMA journal_mode") as cursor:
                assert (await cursor.fetchone())[0] == "wal"
    finally:
        await full.close()
        await normal.close()
    with pytest.raises(ValueError, match="synchronous must be FULL or NORMAL"):
        await SqliteStore.open(tmp_path / "off.db", node="n", synchronous="OFF")


async def test_open_node_store_uses_the_node_settings(tmp_path):
    from dialer.config import NodeSettings
    from dialer.storage import open_node_store

    settings = NodeSettings(name="edge-7", database=f"sqlite:///{tmp_path / 'node.db'}", database_synchronous="FULL")
    store = await open_node_store(settings)
    try:
        assert store.node == "edge-7"
        await store.open_cdr("call-1", "c", None, None, T0)
        assert (await store.get_cdr("call-1")).node == "edge-7"
        async with store._db.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone())[0] == 2
    finally:
        await store.close()


async def test_writers_cancelled_mid_transaction_leave_the_store_usable(store: Store):
    await store.add_leads("c", leads(*numbers(60)), T0)
    for delay_ticks in range(12):
        task = asyncio.create_task(store.claim_leads("c", T0, 3))
        for _ in range(delay_ticks):
            await asyncio.sleep(0)
        task.cancel()
        try:
            claimed_before_cancel = await task
        except asyncio.CancelledError:
            claimed_before_cancel = []
        assert len(claimed_before_cancel) in (0, 3)
    counts = await store.count_leads("c")
    assert counts["new"] + counts["dialing"] == 60
    # whatever the cancelled claims committed is visible as dialing; the store still claims and writes normally
    assert len(await store.claim_leads("c", T0, 100)) == counts["new"]
    await store.open_cdr("after", "c", None, None, T0)
    assert (await store.get_cdr("after")).campaign == "c"


async def test_a_database_from_schema_version_1_is_upgraded_in_place(store_dsn, open_test_store, monkeypatch):
    full_steps = dialer.storage.migrations.STEPS
    monkeypatch.setattr(dialer.storage.migrations, "STEPS", full_steps[:1])
    old = await open_test_store()
    assert await old.schema_version() == 1
    await old.add_leads("c", leads("+12025550100"), T0)
    await old.close()

    monkeypatch.setattr(dialer.storage.migrations, "STEPS", full_steps)
    upgraded = await open_test_store()
    assert await upgraded.schema_version() == dialer.storage.migrations.LATEST_VERSION
    # lead rows written under version 1 are read with today's columns (claiming reads them all)
    [lead] = await upgraded.claim_leads("c", T0, 1)
    await upgraded.open_cdr("call-1", "c", lead.id, "t", T0)
    assert await upgraded.release_dialing_leads("node1") == 1
    assert (await upgraded.get_lead(lead.id)).attempts == 1
