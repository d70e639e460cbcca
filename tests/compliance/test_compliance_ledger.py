"""One suite, both backends: every test here runs on SQLite and on PostgreSQL."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from compliance.audit import verify_rows
from compliance.gate import CampaignContext, Gate
from compliance.ledger import LedgerError
from compliance.packs import load_pack
from compliance.reasons import Reason
from compliance.rules import ConsentRecord, DncEntry

UTC = timezone.utc
CN, US, UK = load_pack("cn"), load_pack("us"), load_pack("uk")
NOON_SHANGHAI = datetime(2026, 5, 4, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
CN_NUMBER = "+8613812348000"
US_NUMBER = "+12025550100"


@pytest.fixture
def gate(ledger):
    return Gate(ledger)


def cn_campaign(name="c1"):
    return CampaignContext(name, "+861012345678", CN)


def us_campaign(name="u1"):
    return CampaignContext(name, "+12025550199", US)


async def prepare_cn(ledger, number=CN_NUMBER):
    await ledger.register_caller_id("+861012345678", marketing=True, now=NOON_SHANGHAI)
    await ledger.add_consents([(number, ConsentRecord("marketing", "web", NOON_SHANGHAI - timedelta(days=30)))])


async def test_reserve_records_until_the_cap_then_refuses_with_next_allowed_at(gate, ledger):
    await prepare_cn(ledger)
    first = await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI)
    second = await gate.reserve(CN_NUMBER, cn_campaign("c2"), NOON_SHANGHAI + timedelta(minutes=5))
    third = await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI + timedelta(minutes=10))
    assert first.allowed and second.allowed and first.attempt_id != second.attempt_id
    assert (third.allowed, third.reason, third.attempt_id) == (False, Reason.frequency_cap, None)
    assert third.next_allowed_at == NOON_SHANGHAI + timedelta(hours=24)
    assert (third.pack, third.pack_version) == ("cn", CN.version)
    assert await ledger.attempts_count() == 2


async def test_check_is_a_dry_run_sharing_the_decision(gate, ledger):
    await prepare_cn(ledger)
    for _ in range(3):
        assert (await gate.check(CN_NUMBER, cn_campaign(), NOON_SHANGHAI)).allowed
    assert await ledger.attempts_count() == 0
    assert await ledger.audit_rows() == [] or all(r.kind != "reserve" for r in await ledger.audit_rows())


async def test_missing_consent_and_caller_id_and_unparseable_numbers(gate, ledger):
    assert (await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI)).reason is Reason.no_consent
    await ledger.add_consents([(CN_NUMBER, ConsentRecord("marketing", "web", NOON_SHANGHAI - timedelta(days=1)))])
    assert (await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI)).reason is Reason.caller_id_unregistered
    assert not (await gate.caller_id_allowed(cn_campaign(), NOON_SHANGHAI)).allowed
    await ledger.register_caller_id("+861012345678", marketing=True, now=NOON_SHANGHAI)
    assert (await gate.caller_id_allowed(cn_campaign(), NOON_SHANGHAI)).allowed
    assert (await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI)).allowed
    bad = await gate.reserve("not a number", cn_campaign(), NOON_SHANGHAI)
    assert (bad.allowed, bad.reason, bad.next_allowed_at) == (False, Reason.invalid_number, None)


async def test_consent_revocation_and_expiry(gate, ledger):
    await ledger.register_caller_id("+861012345678", marketing=True, now=NOON_SHANGHAI)
    expires = NOON_SHANGHAI + timedelta(hours=2)
    await ledger.add_consents([(CN_NUMBER, ConsentRecord("marketing", "sms", NOON_SHANGHAI - timedelta(days=1), expires))])
    assert (await gate.check(CN_NUMBER, cn_campaign(), expires - timedelta(seconds=1))).allowed
    assert (await gate.check(CN_NUMBER, cn_campaign(), expires)).reason is Reason.consent_expired
    assert await ledger.revoke_consent(CN_NUMBER, None, NOON_SHANGHAI) == 1
    assert (await gate.check(CN_NUMBER, cn_campaign(), NOON_SHANGHAI + timedelta(minutes=1))).reason is Reason.no_consent


async def test_outcomes_drive_invalid_backoff_blocking_and_recent_abandon(gate, ledger):
    await prepare_cn(ledger)
    now = NOON_SHANGHAI
    decision = await gate.reserve(CN_NUMBER, cn_campaign(), now)
    await gate.record_outcome(decision.attempt_id, "refused", None, now + timedelta(minutes=1))
    backoff = await gate.check(CN_NUMBER, cn_campaign(), now + timedelta(hours=2))
    assert backoff.reason is Reason.backoff and backoff.next_allowed_at == now + timedelta(minutes=1, hours=24)
    with pytest.raises(LedgerError, match="already has outcome"):
        await gate.record_outcome(decision.attempt_id, "answered", None, now)
    with pytest.raises(LedgerError, match="unknown outcome"):
        await gate.record_outcome(decision.attempt_id, "exploded", None, now)
    for day in (2, 5, 10):
        await ledger.add_attempt(CN_NUMBER, "old", now - timedelta(days=30 + day), "refused")
    assert (await gate.check(CN_NUMBER, cn_campaign(), now + timedelta(days=60))).reason is Reason.refused_too_often
    us = await gate.reserve(US_NUMBER, us_campaign(), NOON_NY)
    await gate.record_outcome(us.attempt_id, "failed", 404, NOON_NY)
    assert (await gate.check(US_NUMBER, us_campaign(), NOON_NY + timedelta(days=3))).reason is Reason.invalid_number
    london = CampaignContext("k1", "+442079460001", UK)
    uk = await gate.reserve("+442079460000", london, NOON_NY)
    await gate.record_outcome(uk.attempt_id, "abandoned", None, NOON_NY)
    again = await gate.check("+442079460000", london, NOON_NY + timedelta(hours=1))
    assert again.reason is Reason.recent_abandon and again.next_allowed_at == NOON_NY + timedelta(hours=72)


async def test_dnc_lists_exact_prefix_per_campaign_and_removal(gate, ledger):
    await ledger.add_dnc([DncEntry("+1202555", True, "national-us")], NOON_NY)
    assert (await gate.reserve(US_NUMBER, us_campaign(), NOON_NY)).reason is Reason.dnc
    assert await ledger.remove_dnc("+1202555", "national-us", None) == 1
    assert await ledger.add_dnc([DncEntry(US_NUMBER, False, "campaign", "u1")] * 2, NOON_NY) == 1
    assert (await gate.reserve(US_NUMBER, us_campaign("u1"), NOON_NY)).reason is Reason.dnc
    assert (await gate.reserve(US_NUMBER, us_campaign("u2"), NOON_NY)).allowed


async def test_abandon_cap_over_the_pack_window(gate, ledger):
    campaign = us_campaign()
    assert await gate.abandon_cap_active(campaign, NOON_NY)  # no history: the first abandon would be 100 %
    for index in range(40):
        number = f"+1202555{index:04d}"
        decision = await gate.reserve(number, campaign, NOON_NY + timedelta(seconds=index))
        await gate.record_outcome(decision.attempt_id, "answered", None, NOON_NY + timedelta(seconds=index + 1))
    assert not await gate.abandon_cap_active(campaign, NOON_NY + timedelta(minutes=5))
    decision = await gate.reserve("+12025559999", campaign, NOON_NY + timedelta(minutes=5))
    await gate.record_outcome(decision.attempt_id, "abandoned", None, NOON_NY + timedelta(minutes=5))
    assert await gate.abandon_cap_active(campaign, NOON_NY + timedelta(minutes=6))  # 2/42 > 3 %
    assert await ledger.campaign_live_and_abandoned("u1", NOON_NY - timedelta(days=1)) == (41, 1)
    switches = [(r.reason, r.allowed) for r in await ledger.audit_rows() if r.kind == "abandon_cap"]
    assert switches == [("abandon_cap", False), ("ok", True), ("abandon_cap", False)]
    assert await ledger.campaign_live_and_abandoned("u1", NOON_NY + timedelta(minutes=4)) == (1, 1)


async def test_audit_chain_records_every_decision_and_verifies(gate, ledger):
    await prepare_cn(ledger)
    for minute in range(4):
        await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI + timedelta(minutes=minute))
    rows = [r for r in await ledger.audit_rows() if r.kind == "reserve"]
    assert [r.allowed for r in rows] == [True, True, False, False]
    assert rows[2].reason == "frequency_cap" and rows[2].pack == "cn" and rows[2].pack_version == CN.version
    assert '"attempts_24h":2' in rows[2].inputs and "next_allowed_at" in rows[2].inputs
    assert verify_rows(await ledger.audit_rows(), await ledger.audit_heads()) == []


async def test_concurrent_tasks_in_one_process_never_pass_the_cap(gate, ledger):
    await prepare_cn(ledger)
    decisions = await asyncio.gather(*(gate.reserve(CN_NUMBER, cn_campaign(f"c{i % 3}"), NOON_SHANGHAI) for i in range(30)))
    assert sum(d.allowed for d in decisions) == 2
    assert await ledger.attempts_count() == 2


async def tamper(ledger, sql: str) -> None:
    if hasattr(ledger, "_pool"):
        async with ledger._pool.acquire() as conn:
            await conn.execute(sql)
    else:
        await ledger._run(ledger._db.execute, sql)


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("UPDATE audit SET reason = 'dnc' WHERE seq = 2", "content does not match its hash"),
        ("DELETE FROM audit WHERE seq = 2", "missing (deleted)"),
        ("DELETE FROM audit WHERE seq = 4", "rows deleted at the end"),
    ],
)
async def test_audit_verify_detects_edited_and_deleted_rows(gate, ledger, sql, expected):
    await prepare_cn(ledger)
    for minute in range(4):
        await gate.reserve(CN_NUMBER, cn_campaign(), NOON_SHANGHAI + timedelta(minutes=minute))
    assert verify_rows(await ledger.audit_rows(), await ledger.audit_heads()) == []
    await tamper(ledger, sql)
    problems = verify_rows(await ledger.audit_rows(), await ledger.audit_heads())
    assert any(expected in p for p in problems), problems


async def test_reserve_accepts_a_number_parsed_at_lead_import(gate, ledger):
    from compliance.numbers import normalize

    parsed = normalize(US_NUMBER)
    first = await gate.reserve(parsed, us_campaign(), NOON_NY)
    assert first.allowed
    for minute in (1, 2):
        await gate.reserve(US_NUMBER, us_campaign(), NOON_NY + timedelta(minutes=minute))
    capped = await gate.check(parsed, us_campaign(), NOON_NY + timedelta(minutes=3))
    assert capped.reason is Reason.frequency_cap and capped.next_allowed_at == NOON_NY + timedelta(hours=24)


def test_sqlite_dsn_forms():
    from compliance.ledger import sqlite_path

    assert sqlite_path("sqlite:///var/demo.db") == ("var/demo.db", "full")
    assert sqlite_path("sqlite:////tmp/x.db?synchronous=normal") == ("/tmp/x.db", "normal")
    assert sqlite_path("var/demo.db") == ("var/demo.db", "full")
    for bad in ("sqlite://host/x.db", "sqlite:///x.db?synchronous=off", "sqlite:///x.db?journal=delete"):
        with pytest.raises(LedgerError):
            sqlite_path(bad)


async def test_a_failing_request_fails_alone_and_a_naive_time_is_refused(gate, ledger, monkeypatch):
    with pytest.raises(LedgerError, match="naive datetime"):
        await gate.reserve(US_NUMBER, us_campaign(), datetime(2026, 6, 10, 12, 0))
    original = ledger._reserve_batch

    def poisoned(requests):
        if any(r.campaign == "poison" for r in requests):
            raise RuntimeError("boom")
        return original(requests)

    async def poisoned_async(requests):
        if any(r.campaign == "poison" for r in requests):
            raise RuntimeError("boom")
        return await original(requests)

    monkeypatch.setattr(ledger, "_reserve_batch", poisoned_async if asyncio.iscoroutinefunction(original) else poisoned)
    numbers = [f"+1202555{i:04d}" for i in range(6)]
    results = await asyncio.gather(
        *(gate.reserve(n, us_campaign("poison" if i == 3 else "u1"), NOON_NY) for i, n in enumerate(numbers)),
        return_exceptions=True,
    )
    assert isinstance(results[3], RuntimeError)
    assert all(r.allowed for i, r in enumerate(results) if i != 3)
    assert await ledger.attempts_count() == 5
