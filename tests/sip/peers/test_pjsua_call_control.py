"""Call control against a PJSIP user agent: final responses mapped to outcomes, the ring timeout's CANCEL, early
media, RFC 4733 DTMF both ways and through the bridge, hold and resume from either side, UPDATE with an offer, a TCP
trunk. (The pjsua2 wheels are built without IPv6; baresip proves IPv6.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.media.dtmf import DtmfDigit
from sip.switch import Answered, Call, EarlyMedia, Failed, Ringing
from tests.sip.peers.harness import (
    AGENT_HZ, ANNOUNCEMENT, CALLEE_HZ, PACKETS_PER_S, answered, audible, call_and_bridge, read_wav, start_switch,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]



async def events_until_final(call: Call, timeout_s: float) -> list:
    async def until_final() -> list:
        seen = []
        async for event in call.events():
            seen.append(event)
            if isinstance(event, (Answered, Failed)):
                return seen
        return seen

    return await asyncio.wait_for(until_final(), timeout_s)


async def packets_in_during(call: Call, seconds: float) -> int:
    before = call.leg.stats.packets_in
    await asyncio.sleep(seconds)
    return call.leg.stats.packets_in - before


async def packets_out_during(call: Call, seconds: float) -> int:
    before = call.leg.stats.packets_out
    await asyncio.sleep(seconds)
    return call.leg.stats.packets_out - before


@pytest.mark.parametrize(("code", "outcome"), [
    (486, "busy"), (600, "busy"), (480, "no_answer"), (404, "invalid"), (603, "rejected"), (503, "congestion"),
])
async def test_final_responses_map_to_outcomes(pjsua, code: int, outcome: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", record=False, answer_code=code)
    switch = await start_switch(callee_ua)
    try:
        call = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        events = await events_until_final(call, 10)
        assert isinstance(events[0], Ringing)
        assert events[-1] == Failed(call.call_id, code, outcome, events[-1].reason)
        await callee_ua.wait_for("disconnected", 5, code=code)
        assert switch.trunks["pjsua"].channels_in_use == 0
    finally:
        await switch.stop()


async def test_ring_timeout_cancels_the_invite(pjsua) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", record=False, answer_code=0)
    switch = await start_switch(callee_ua)
    try:
        call = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, ring_timeout_s=1.0)
        events = await events_until_final(call, 10)
        assert isinstance(events[0], Ringing)
        assert events[-1] == Failed(call.call_id, 487, "no_answer", events[-1].reason)
        await callee_ua.wait_for("disconnected", 5, code=487)  # pjsua saw our CANCEL
    finally:
        await switch.stop()


async def test_early_media_flows_before_the_answer(pjsua) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ, early_media=True, answer_delay_s=1.5)
    switch = await start_switch(callee_ua)
    try:
        call = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        seen = []
        async for event in call.events():
            seen.append(type(event))
            if isinstance(event, EarlyMedia):
                early_packets = await packets_in_during(call, 1.0)
            if isinstance(event, (Answered, Failed)):
                break
        assert seen == [EarlyMedia, Answered]
        print(f"early media: {early_packets} RTP packets in 1 s before the answer")
        assert early_packets >= PACKETS_PER_S * 0.7
        assert await packets_in_during(call, 0.5) >= PACKETS_PER_S * 0.5 * 0.7
    finally:
        await switch.stop()


@pytest.fixture
async def bridged(pjsua, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A pjsua2 callee (440 Hz) and agent (1000 Hz) bridged by a switch: (callee UA, agent UA, callee, agent)."""
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent3")
    switch = await start_switch(callee_ua)
    try:
        callee, agent, _ = await call_and_bridge(
            switch, "pjsua", callee_ua, f"sip:agent3@{agent_ua.address}", agent_ua, tmp_path)
        yield callee_ua, agent_ua, callee, agent
    finally:
        await switch.stop()


async def test_dtmf_both_ways_and_through_the_bridge(bridged) -> None:  # type: ignore[no-untyped-def]
    callee_ua, agent_ua, callee, agent = bridged
    assert callee.leg.negotiated is not None and callee.leg.negotiated.dtmf_payload_type is not None
    heard_by_switch: list[DtmfDigit] = []
    callee.leg.on_dtmf = heard_by_switch.append
    callee_ua.command("dtmf 147#")
    for _ in range(60):
        if len(heard_by_switch) == 4:
            break
        await asyncio.sleep(0.05)
    assert "".join(d.digit for d in heard_by_switch) == "147#"
    assert all(d.complete and d.duration_ms >= 40 for d in heard_by_switch), heard_by_switch
    await agent_ua.wait_for("dtmf", 3, digit="#")  # relayed to the agent with its payload type
    assert [e["digit"] for e in agent_ua.events if e["event"] == "dtmf"] == list("147#")

    await agent.leg.send_dtmf("*09")
    await agent_ua.wait_for("dtmf", 3, digit="9")
    assert [e["digit"] for e in agent_ua.events if e["event"] == "dtmf"] == list("147#*09")
    assert not any(e["event"] == "dtmf" for e in callee_ua.events)


async def test_hold_and_resume_from_either_side(bridged) -> None:  # type: ignore[no-untyped-def]
    callee_ua, agent_ua, callee, agent = bridged
    switch = callee.switch
    # we hold the callee (sendonly): pjsua answers recvonly and stops sending; the agent still reaches it
    await switch.hold(callee)
    await callee_ua.wait_for("media", 5, status="remote_hold")
    await asyncio.sleep(0.3)
    held_in, held_out = await asyncio.gather(packets_in_during(callee, 1.0), packets_out_during(callee, 1.0))
    await switch.resume(callee)
    await asyncio.sleep(0.3)
    resumed_in = await packets_in_during(callee, 1.0)
    print(f"switch hold: callee sent {held_in} packets/s held, {resumed_in} resumed; we sent {held_out} held")
    assert held_in <= 2 and held_out >= PACKETS_PER_S * 0.7 and resumed_in >= PACKETS_PER_S * 0.7
    assert callee.state == "answered"

    # the callee holds us (its re-INVITE, sendonly): we answer recvonly and stop sending to it
    callee_ua.command("hold")
    await callee_ua.wait_for("media", 5, status="local_hold")
    await asyncio.sleep(0.3)
    held_out = await packets_out_during(callee, 1.0)
    callee_ua.command("unhold")
    for _ in range(100):
        if [e.get("status") for e in callee_ua.events if e["event"] == "media"][-1] == "active":
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    resumed_out = await packets_out_during(callee, 1.0)
    print(f"callee hold: we sent {held_out} packets/s to it held, {resumed_out} resumed")
    assert held_out <= 2 and resumed_out >= PACKETS_PER_S * 0.7
    assert callee.state == "answered" and agent.state == "answered"


async def test_trunk_over_tcp(pjsua) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ, transport="tcp")
    switch = await start_switch(callee_ua, transport="tcp")
    try:
        call = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        await asyncio.wait_for(answered(call), 10)
        assert await packets_in_during(call, 1.0) >= PACKETS_PER_S * 0.7
        await switch.play(call, ANNOUNCEMENT)
        await switch.hangup(call)
        await asyncio.wait_for(asyncio.shield(call.done), 5)
        await callee_ua.wait_for("disconnected", 5)
        await callee_ua.wait_for("stopped", 5)
    finally:
        await switch.stop()
    assert callee_ua.recording is not None
    samples, rate = read_wav(callee_ua.recording)
    assert len(audible(samples[:, 0], rate)) >= 1.5 * rate  # the announcement reached it


async def test_update_with_an_offer_is_answered(bridged) -> None:  # type: ignore[no-untyped-def]
    """RFC 3311 5.2: the 2xx to an UPDATE carrying an offer carries the answer. PJSIP completes its offer/answer (a
    new media state) only when it does; the call and both directions of RTP carry on."""
    callee_ua, agent_ua, callee, agent = bridged
    media_states = len([e for e in callee_ua.events if e["event"] == "media"])
    callee_ua.command("update")
    for _ in range(60):
        if len([e for e in callee_ua.events if e["event"] == "media"]) > media_states:
            break
        await asyncio.sleep(0.05)
    assert [e for e in callee_ua.events if e["event"] == "media"][media_states:] == [
        {"event": "media", "status": "active", "codec": "PCMU"}], callee_ua.events
    received, sent = await asyncio.gather(packets_in_during(callee, 1.0), packets_out_during(callee, 1.0))
    assert received >= PACKETS_PER_S * 0.7 and sent >= PACKETS_PER_S * 0.7
    assert callee.state == "answered" and agent.state == "answered"
