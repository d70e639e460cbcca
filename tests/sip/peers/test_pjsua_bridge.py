"""The audio path end to end with PJSIP on both sides: a pjsua2 callee (reached by Switch.originate on a trunk
pointing at it) sends 440 Hz, a pjsua2 agent (reached by Switch.call_agent) sends 1000 Hz; the switch bridges them
with recording on. Each side must hear the other's tone, and our two-channel recording must hold 440 Hz on the
callee channel and 1000 Hz on the agent channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.switch import Ended
from tests.sip.peers.harness import (
    AGENT_HZ, ANNOUNCEMENT, BRIDGED_S, CALLEE_HZ, PACKETS_PER_S, answered, assert_tones_crossed,
    audible, call_and_bridge, dominant_per_block, read_wav, runs, spectrum, start_switch,
)


pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]
LIVE_RECORDING_LAG_S = 1.0  # flush interval 0.5 s + jitter allowance 0.2 s + writer batching 0.1 s, and a busy machine


@pytest.mark.parametrize("hung_up_by", ["switch", "callee"])
async def test_tones_cross_the_bridge_and_are_recorded(pjsua, tmp_path: Path, hung_up_by: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent3")
    switch = await start_switch(callee_ua)
    try:
        callee, agent, recording = await call_and_bridge(
            switch, "pjsua", callee_ua, f"sip:agent3@{agent_ua.address}", agent_ua, tmp_path)
        # written as the call goes: a crash now would lose at most the last flush + jitter allowance (0.8 s)
        samples, rate = read_wav(recording)
        print(f"recording on disk during the call: {len(samples) / rate:.2f} s after {BRIDGED_S} s bridged")
        assert len(samples) >= (BRIDGED_S - LIVE_RECORDING_LAG_S) * rate
        assert abs(spectrum(audible(samples[:, 0], rate), rate, CALLEE_HZ).peak_hz - CALLEE_HZ) <= 5

        if hung_up_by == "switch":
            await switch.hangup(agent)
            ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
            assert ended == Ended(agent.call_id, "local", "normal")
            await agent_ua.wait_for("disconnected", 5)
            await switch.hangup(callee)
            ended = await asyncio.wait_for(asyncio.shield(callee.done), 5)
            assert ended == Ended(callee.call_id, "local", "normal")
            await callee_ua.wait_for("disconnected", 5)
        else:
            callee_ua.command("hangup")
            ended = await asyncio.wait_for(asyncio.shield(callee.done), 5)
            assert isinstance(ended, Ended) and ended.by == "remote"
            await switch.hangup(agent)
            ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
            assert isinstance(ended, Ended) and ended.by == "local"
            await agent_ua.wait_for("disconnected", 5)
        for ua in (callee_ua, agent_ua):
            await ua.wait_for("stopped", 5)
    finally:
        await switch.stop()
    assert_tones_crossed(callee_ua, agent_ua, recording)


SECOND_AGENT_HZ = 1500


async def test_rebridging_keeps_one_clean_stream_towards_the_callee(pjsua, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Callee bridged to agent 1, unbridged, hears the announcement, bridged to agent 2: PJSIP on the callee side
    sees one RTP stream without loss, duplicates or reordering, and hears 1000 Hz, the chime, then 1500 Hz."""
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    first_ua = await pjsua("agent1", "agent", tone_hz=AGENT_HZ, user="agent1")
    second_ua = await pjsua("agent2", "agent", tone_hz=SECOND_AGENT_HZ, user="agent2")
    switch = await start_switch(callee_ua)
    try:
        callee, first, _ = await call_and_bridge(
            switch, "pjsua", callee_ua, f"sip:agent1@{first_ua.address}", first_ua, tmp_path)
        await switch.unbridge(callee, first)
        await switch.hangup(first)
        await switch.play(callee, ANNOUNCEMENT)
        second = await switch.call_agent(f"sip:agent2@{second_ua.address}")
        await asyncio.wait_for(answered(second), 10)
        await switch.bridge(callee, second, tmp_path / "second.wav")
        await asyncio.sleep(BRIDGED_S)
        callee_ua.command("stats")
        stats = await callee_ua.wait_for("stats", 5)
        await switch.hangup(callee)
        await switch.hangup(second)
        await callee_ua.wait_for("stopped", 5)
    finally:
        await switch.stop()
    print(f"PJSIP callee receive statistics after two bridges and an announcement: {stats}")
    assert stats["packets"] >= PACKETS_PER_S * (2 * BRIDGED_S + 2.5) * 0.8
    assert (stats["lost"], stats["duplicated"], stats["reordered"], stats["discarded"]) == (0, 0, 0, 0)
    assert callee_ua.recording is not None
    samples, rate = read_wav(callee_ua.recording)
    heard = runs(dominant_per_block(samples[:, 0], rate, 0.25))
    print(f"callee heard, in order: {heard}")
    expected = [AGENT_HZ, 524, 660, 784, 524, 660, 784, SECOND_AGENT_HZ]
    assert len(heard) == len(expected) and all(abs(h - e) <= 15 for h, e in zip(heard, expected)), heard
