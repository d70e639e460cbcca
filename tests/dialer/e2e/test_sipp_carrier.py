"""The engine end to end on loopback: SIPp as the carrier, our simulated agent phones, the real switch, store and
gate. Bounded: each test is over in well under SIPp's own 20 s limit."""

from __future__ import annotations

import asyncio
import wave
from datetime import datetime, timezone
from pathlib import Path

import pytest

from compliance.rules import DncEntry
from dialer.runtime import Engine
from tests.dialer.e2e.conftest import e2e_config, ledger_outcomes
from tests.dialer.runtime.conftest import lead, now_utc, numbers_in_window, wait_for

pytestmark = pytest.mark.timeout(60)


async def start_engine(tmp_path: Path, carrier, phones, numbers: list[str], **campaign: object) -> Engine:
    engine = Engine(e2e_config(tmp_path, carrier.port, phones, **campaign))
    await engine.start()
    await engine.store.add_leads("c1", [lead(n) for n in numbers], now_utc())
    for agent_id in phones.agent_ids:
        await engine.control_call("agent_login", agent_id)
    await wait_for(lambda: engine.live_status()["agents"]["ready"] == len(phones.agent_ids))
    return engine


async def test_answered_calls_reach_agents_bridged_and_recorded(tmp_path, sipp_carrier, agent_phones) -> None:
    carrier = await sipp_carrier(ring_ms=300, talk_ms=2500)
    phones = await agent_phones(2)
    numbers = numbers_in_window(3)
    engine = await start_engine(tmp_path, carrier, phones, numbers)
    try:
        await engine.control_call("campaign_start", "c1")
        await wait_for(lambda: engine.tally.originated == 3, timeout=15)
        await wait_for(lambda: not engine.core.calls, timeout=15)
        await engine.flush()
        await asyncio.sleep(1.0)  # recordings are completed in the background once a bridge ends
        cdrs = [c async for c in engine.store.export_cdrs(campaign="c1")]
        sip_responses = {
            sample.labels["class"]: sample.value
            for metric in engine.metrics.registry.collect() if metric.name == "dialer_sip_responses"
            for sample in metric.samples if sample.name == "dialer_sip_responses_total"
        }
    finally:
        await engine.stop(grace_s=1)
    assert len(carrier.invites()) == 3
    assert len(cdrs) == 3
    assert sip_responses.get("1xx", 0) >= 3 and sip_responses.get("2xx") == 3  # 180 Ringing from the switch, 200 from CDRs
    recordings = sorted((tmp_path / "recordings").rglob("*.wav"))
    assert sorted(Path(c.recording_path) for c in cdrs) == recordings  # one file per bridged CDR, no other
    for cdr in cdrs:
        assert cdr.outcome == "answered" and not cdr.abandoned and cdr.agent_id in phones.agent_ids
        assert cdr.hangup_by == "remote"  # SIPp's BYE ended the talk
        assert cdr.answered_at <= cdr.bridged_at <= cdr.ended_at
        talk_s = (cdr.ended_at - cdr.bridged_at).total_seconds()
        with wave.open(cdr.recording_path) as recording:
            assert recording.getnchannels() == 2 and recording.getframerate() == 8000
            recorded_s = recording.getnframes() / 8000
        assert 1.5 <= recorded_s <= talk_s + 0.5, (recorded_s, talk_s)  # the file covers the conversation
    assert all(outcomes == ["answered"] for outcomes in ledger_outcomes(tmp_path / "dialer.db").values())


async def test_answer_without_free_agent_hears_announcement_and_is_abandoned(tmp_path, sipp_carrier,
                                                                            agent_phones) -> None:
    carrier = await sipp_carrier(ring_ms=1000, talk_ms=8000)
    phones = await agent_phones(1)
    [number] = numbers_in_window(1)
    engine = await start_engine(tmp_path, carrier, phones, [number])
    played: list[tuple[datetime, object]] = []
    play = engine.telephony.play

    async def recorded_play(call, path):
        played.append((datetime.now(timezone.utc), call))
        await play(call, path)

    engine.telephony.play = recorded_play
    try:
        await engine.control_call("campaign_start", "c1")
        await wait_for(lambda: engine.tally.originated == 1)
        await engine.control_call("agent_pause", phones.agent_ids[0])  # the only agent leaves while it rings
        await wait_for(lambda: played, timeout=10)
        leg = played[0][1].leg
        await wait_for(lambda: not engine.core.calls, timeout=10)
        await engine.flush()
        [cdr] = [c async for c in engine.store.export_cdrs(campaign="c1")]
    finally:
        await engine.stop(grace_s=1)
    answered_to_message_s = (played[0][0] - cdr.answered_at).total_seconds()
    assert 1.9 <= answered_to_message_s <= 2.3, answered_to_message_s  # within the 2 s connect limit, not before
    assert leg.stats.packets_out >= 100  # the 2.5 s announcement went out as RTP ...
    assert leg.stats.packets_in > 0  # ... and SIPp echoed it back
    assert cdr.abandoned and cdr.outcome == "abandoned" and cdr.agent_id is None and cdr.bridged_at is None
    assert cdr.hangup_by == "local" and cdr.recording_path is None
    assert ledger_outcomes(tmp_path / "dialer.db") == {number: ["abandoned"]}
    assert len(carrier.invites()) == 1


async def test_refused_numbers_are_never_sent_an_invite(tmp_path, sipp_carrier, agent_phones) -> None:
    carrier = await sipp_carrier(ring_ms=200, talk_ms=500)
    phones = await agent_phones(2)
    allowed = numbers_in_window(2)
    [night] = numbers_in_window(1, inside=False)
    [listed] = numbers_in_window(3)[2:]
    engine = await start_engine(tmp_path, carrier, phones, [night, listed, *allowed])
    await engine.gate.ledger.add_dnc([DncEntry(listed, False, "internal", None)], now_utc())
    try:
        await engine.control_call("campaign_start", "c1")
        await wait_for(lambda: sum(engine.tally.gate_refusals.values()) == 2 and engine.tally.originated == 2)
        await wait_for(lambda: not engine.core.calls, timeout=10)
        await engine.flush()
        leads = {l.e164: l for l in await engine.store.list_leads("c1")}
    finally:
        await engine.stop(grace_s=1)
    invited = carrier.invites()
    assert len(invited) == 2
    assert all(night[1:] not in uri and listed[1:] not in uri for uri in invited)
    assert sorted(n for n in allowed if any(n[1:] in uri for uri in invited)) == sorted(allowed)
    assert dict(engine.tally.gate_refusals) == {"outside_calling_window": 1, "dnc": 1}
    assert leads[night].attempts == 0 and leads[night].status == "scheduled"  # back when its morning comes
    assert leads[listed].attempts == 0 and leads[listed].status == "closed"  # on the DNC list: never
    assert set(ledger_outcomes(tmp_path / "dialer.db")) == set(allowed)  # refusals reserve no attempt
