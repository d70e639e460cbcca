"""List recycling on both backends: closed leads whose last outcome was chosen reopen for a new pass."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import dialer.storage.migrations
from dialer.cli import main
from dialer.storage import NewLead, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(hours=20)


def new_leads(count: int) -> list[NewLead]:
    return [NewLead(e164=f"+1202555{index:04d}", raw_number=f"202555{index:04d}") for index in range(count)]


async def close_with(store: Store, campaign: str, *outcomes: str) -> list[int]:
    """One lead per outcome, dialled twice (the first scheduled with busy) then closed with that outcome."""
    await store.add_leads(campaign, new_leads(len(outcomes)), T0)
    claimed = await store.claim_leads(campaign, T0, len(outcomes))
    for lead in claimed:
        assert await store.schedule_lead(lead.id, T0, attempted=True, outcome="busy")
    claimed = await store.claim_leads(campaign, T0, len(outcomes))
    for lead, outcome in zip(claimed, outcomes):
        status = "done" if outcome == "answered" else "closed"
        assert await store.finish_lead(lead.id, status, attempted=True, outcome=outcome)
    return [lead.id for lead in claimed]


async def test_schedule_and_finish_record_the_last_outcome(store: Store):
    await store.add_leads("c", new_leads(1), T0)
    [lead] = await store.claim_leads("c", T0, 1)
    assert lead.last_outcome is None
    await store.schedule_lead(lead.id, T0, attempted=True, outcome="no_answer")
    assert (await store.get_lead(lead.id)).last_outcome == "no_answer"
    await store.claim_leads("c", T0, 1)
    await store.schedule_lead(lead.id, T0, attempted=False)  # no outcome given: the last one stays
    assert (await store.get_lead(lead.id)).last_outcome == "no_answer"
    await store.claim_leads("c", T0, 1)
    await store.finish_lead(lead.id, "closed", attempted=True, outcome="busy")
    finished = await store.get_lead(lead.id)
    assert (finished.status, finished.attempts, finished.last_outcome) == ("closed", 2, "busy")


async def test_recycle_reopens_only_closed_leads_with_a_chosen_last_outcome(store: Store):
    busy, no_answer, congestion, answered, invalid, dnc = await close_with(
        store, "c", "busy", "no_answer", "congestion", "answered", "invalid", "dnc"
    )
    [other_campaign] = await close_with(store, "other", "busy")

    assert await store.recycle_leads("c", {"no_answer", "busy"}, LATER) == 2

    for lead_id in (busy, no_answer):
        lead = await store.get_lead(lead_id)
        assert (lead.status, lead.attempts, lead.next_attempt_at) == ("scheduled", 0, LATER)
    for lead_id in (congestion, invalid, dnc, other_campaign):
        assert (await store.get_lead(lead_id)).status == "closed"
    assert (await store.get_lead(answered)).status == "done"
    assert await store.claim_leads("c", LATER - timedelta(seconds=1), 10) == []
    assert sorted(lead.id for lead in await store.claim_leads("c", LATER, 10)) == sorted([busy, no_answer])


async def test_recycle_leaves_leads_still_in_the_hopper_alone(store: Store):
    await store.add_leads("c", new_leads(2), T0)
    waiting, dialing = await store.claim_leads("c", T0, 2)
    await store.schedule_lead(waiting.id, T0 + timedelta(hours=2), attempted=True, outcome="no_answer")

    assert await store.recycle_leads("c", ["no_answer"], LATER) == 0
    kept = await store.get_lead(waiting.id)
    assert (kept.status, kept.attempts, kept.next_attempt_at) == ("scheduled", 1, T0 + timedelta(hours=2))
    assert (await store.get_lead(dialing.id)).status == "dialing"


async def test_a_second_pass_counts_attempts_from_zero_and_can_be_recycled_again(store: Store):
    [lead_id] = await close_with(store, "c", "no_answer")
    assert await store.recycle_leads("c", ["no_answer"], T0) == 1
    [lead] = await store.claim_leads("c", T0, 1)
    assert lead.attempts == 0
    await store.finish_lead(lead_id, "closed", attempted=True, outcome="no_answer")
    assert (await store.get_lead(lead_id)).attempts == 1
    assert await store.recycle_leads("c", ["no_answer"], LATER) == 1


@pytest.mark.parametrize("outcomes", [[], ["answered"], ["invalid"], ["rejected"], ["dnc"], ["no_answer", "nope"]])
async def test_recycle_refuses_outcomes_that_may_not_be_recycled(store: Store, outcomes):
    [lead_id] = await close_with(store, "c", "no_answer")
    with pytest.raises(ValueError, match="recycle_leads"):
        await store.recycle_leads("c", outcomes, LATER)
    assert (await store.get_lead(lead_id)).status == "closed"


async def test_recycle_refuses_a_naive_due_time(store: Store):
    with pytest.raises(ValueError, match="naive"):
        await store.recycle_leads("c", ["busy"], LATER.replace(tzinfo=None))


async def test_leads_from_before_the_migration_have_no_last_outcome_and_are_not_recycled(
    open_test_store, monkeypatch
):
    full_steps = dialer.storage.migrations.STEPS
    monkeypatch.setattr(dialer.storage.migrations, "STEPS", full_steps[:2])
    old = await open_test_store()
    await old.add_leads("c", new_leads(1), T0)
    await old.close()

    monkeypatch.setattr(dialer.storage.migrations, "STEPS", full_steps)
    upgraded = await open_test_store()
    assert await upgraded.schema_version() == dialer.storage.migrations.LATEST_VERSION
    [lead] = await upgraded.claim_leads("c", T0, 1)
    assert (await upgraded.get_lead(lead.id)).last_outcome is None
    await upgraded.finish_lead(lead.id, "closed", attempted=True)  # closed with no outcome recorded
    assert await upgraded.recycle_leads("c", ["no_answer", "busy"], LATER) == 0


async def test_cli_recycle_reports_the_count_and_names_bad_input(store_dsn, open_test_store, capsys):
    store = await open_test_store()
    busy, answered = await close_with(store, "spring", "busy", "answered")
    base = ["leads", "recycle", "--campaign", "spring", "--db", store_dsn]

    assert await asyncio.to_thread(main, [*base, "--outcomes", "no_answer,bogus"]) == 2
    assert "'bogus'" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*base, "--outcomes", "answered"]) == 2
    assert "'answered'" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*base, "--outcomes", "busy", "--due", "tomorrow"]) == 2
    assert "--due" in capsys.readouterr().err
    assert (await store.get_lead(busy)).status == "closed"

    due = "2026-03-03T08:00:00+00:00"
    assert await asyncio.to_thread(main, [*base, "--outcomes", "no_answer, busy", "--due", due]) == 0
    assert "recycled 1 leads" in capsys.readouterr().out
    lead = await store.get_lead(busy)
    assert (lead.status, lead.attempts, lead.next_attempt_at) == ("scheduled", 0, datetime.fromisoformat(due))
    assert (await store.get_lead(answered)).status == "done"

    assert await asyncio.to_thread(main, ["leads", "list", "--campaign", "spring", "--db", store_dsn]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    columns = header.split("\t")
    listed = {int(row.split("\t")[0]): dict(zip(columns, row.split("\t"))) for row in rows}
    assert (listed[busy]["status"], listed[busy]["last_outcome"], listed[busy]["passes"]) == ("scheduled", "busy", "1")
    assert (listed[answered]["last_outcome"], listed[answered]["passes"]) == ("answered", "0")


async def test_max_passes_limits_how_often_a_lead_is_recycled(store: Store):
    [lead_id] = await close_with(store, "c", "busy")
    assert await store.recycle_leads("c", ["busy"], T0, max_passes=1) == 1
    assert (await store.get_lead(lead_id)).passes == 1
    await store.claim_leads("c", T0, 1)
    await store.finish_lead(lead_id, "closed", attempted=True, outcome="busy")
    assert await store.recycle_leads("c", ["busy"], T0, max_passes=1) == 0
    assert await store.recycle_leads("c", ["busy"], T0, max_passes=2) == 1
    assert (await store.get_lead(lead_id)).passes == 2
