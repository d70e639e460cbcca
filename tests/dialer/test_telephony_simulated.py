"""The simulated telephony backend: seeded outcomes on real (scaled) time, channels, bridge, hangup."""

from __future__ import annotations

import asyncio

import pytest

from dialer.core.events import Answered, Ended, Failed, Ringing
from dialer.telephony import Telephony
from tests.dialer.simulated_telephony import SimulatedCarrier, SimulatedTelephony

FAST = dict(time_scale=0.001, ring_mean_s=5.0, ring_sd_s=2.0, talk_mean_s=20.0, talk_sd_s=5.0)


async def collect(call) -> list:
    return [e async for e in call.events()]


async def test_answered_call_bridged_to_an_agent_ends_when_the_callee_hangs_up():
    tel = SimulatedTelephony(SimulatedCarrier(answer_rate=1.0, busy_rate=0, invalid_rate=0, **FAST))
    agent = await tel.call_agent("a1")
    call = await tel.originate("t1", "+14155550100", "+14155550199", {}, ring_timeout_s=60)
    seen = []
    async for event in call.events():
        seen.append(type(event))
        if isinstance(event, Answered):
            await tel.bridge(call, agent, None)
    assert seen == [Ringing, Answered, Ended]
    assert agent.state == "answered"  # the agent's leg stays up
    assert tel.channels_in_use("t1") == 0


@pytest.mark.parametrize(("mix", "code", "outcome"), [
    (dict(answer_rate=0, busy_rate=1, invalid_rate=0), 486, "busy"),
    (dict(answer_rate=0, busy_rate=0, invalid_rate=1), 404, "invalid"),
    (dict(answer_rate=0, busy_rate=0, invalid_rate=0, congestion_rate=1), 503, "congestion"),
    (dict(answer_rate=0, busy_rate=0, invalid_rate=0), 487, "no_answer"),
])
async def test_failures_carry_their_sip_code_and_outcome(mix, code, outcome):
    tel = SimulatedTelephony(SimulatedCarrier(**mix, **FAST))
    call = await tel.originate("t1", "+14155550100", "+14155550199", {}, ring_timeout_s=10)
    events = await asyncio.wait_for(collect(call), 5)
    assert events[-1] == Failed(call.call_id, code, outcome)


async def test_answered_callee_left_alone_hangs_up_after_its_patience():
    tel = SimulatedTelephony(SimulatedCarrier(answer_rate=1.0, busy_rate=0, invalid_rate=0, patience_s=4, **FAST))
    call = await tel.originate("t1", "+14155550100", "+14155550199", {}, ring_timeout_s=60)
    events = await asyncio.wait_for(collect(call), 5)
    assert events[-1] == Ended(call.call_id, "remote", "callee gave up")


async def test_same_seed_gives_the_same_outcomes():
    async def outcomes(seed: int) -> list[str]:
        tel = SimulatedTelephony(SimulatedCarrier(**FAST), seed=seed)
        calls = [await tel.originate("t1", "+1", "+2", {}, ring_timeout_s=8) for _ in range(30)]
        results = []
        for call in calls:
            events = await asyncio.wait_for(collect_until_settled(call), 5)
            results.append(type(events[-1]).__name__ + getattr(events[-1], "outcome", ""))
        await tel.stop()
        return results

    first = await outcomes(7)
    assert first == await outcomes(7)
    assert first != await outcomes(8)
    assert {"Answered", "Failedbusy", "Failedno_answer"} <= set(first)


async def collect_until_settled(call) -> list:
    events = []
    async for event in call.events():
        events.append(event)
        if isinstance(event, Answered):
            break
    return events


async def test_trunk_channel_limit_and_local_hangup():
    tel = SimulatedTelephony(SimulatedCarrier(answer_rate=1.0, busy_rate=0, invalid_rate=0, **FAST),
                             trunk_channels={"t1": 1})
    call = await tel.originate("t1", "+1", "+2", {}, ring_timeout_s=60)
    with pytest.raises(RuntimeError, match="no free channel"):
        await tel.originate("t1", "+1", "+2", {}, ring_timeout_s=60)
    await tel.hangup(call)
    events = await asyncio.wait_for(collect(call), 5)
    assert events[-1] == Failed(call.call_id, 487, "no_answer")
    assert tel.channels_in_use("t1") == 0


def test_simulated_backend_satisfies_the_protocol_shape():
    for name in ("originate", "call_agent", "bridge", "unbridge", "play", "hangup", "stop"):
        assert callable(getattr(SimulatedTelephony, name)) and hasattr(Telephony, name)


def test_carrier_mix_over_one_is_rejected():
    with pytest.raises(ValueError, match="must not exceed 1"):
        SimulatedCarrier(answer_rate=0.9, busy_rate=0.2)
