"""The audio path end to end with PJSIP on both sides: a pjsua2 callee (reached by Switch.originate on a trunk
pointing at it) sends 440 Hz, a pjsua2 agent (reached by Switch.call_agent) sends 1000 Hz; the switch bridges them
with recording on. Each side must hear the other's tone, and our two-channel recording must hold 440 Hz on the
callee channel and 1000 Hz on the agent channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.settings import TrunkSettings
from sip.switch import Answered, EarlyMedia, Ended, Ringing, Switch
from tests.sip.peers.conftest import SWITCH_RTP, switch_sip_settings
from tests.sip.peers.harness import audible, read_wav, spectrum

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]

CALLEE_HZ = 440
AGENT_HZ = 1000
BRIDGED_S = 2.0
PEAK_TOLERANCE_HZ = 5.0
MIN_TONE_SHARE = 0.8  # G.711 quantisation noise and the bridge's switch-on edges leave the rest


async def answered(call) -> None:  # type: ignore[no-untyped-def]
    async for event in call.events():
        if isinstance(event, Answered):
            return
        if not isinstance(event, (Ringing, EarlyMedia)):
            raise AssertionError(f"{call!r}: {event}")


def assert_tone(path: Path, channel: int, tone_hz: float, what: str) -> float:
    samples, rate = read_wav(path)
    heard = audible(samples[:, channel], rate)
    assert len(heard) >= rate, f"{what}: only {len(heard) / rate:.2f} s of audio in {path.name}"
    measured = spectrum(heard, rate, tone_hz)
    assert abs(measured.peak_hz - tone_hz) <= PEAK_TOLERANCE_HZ, f"{what}: peak at {measured.peak_hz:.1f} Hz"
    assert measured.tone_share >= MIN_TONE_SHARE, f"{what}: {tone_hz} Hz holds {measured.tone_share:.2%} of energy"
    print(f"{what}: peak {measured.peak_hz:.2f} Hz, tone share {measured.tone_share:.3f}, "
          f"{len(heard) / rate:.2f} s audible")
    return measured.peak_hz


@pytest.mark.parametrize("hung_up_by", ["switch", "callee"])
async def test_tones_cross_the_bridge_and_are_recorded(pjsua, tmp_path: Path, hung_up_by: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent3")
    trunk = TrunkSettings(name="pjsua", host="127.0.0.1", port=callee_ua.port, options_enabled=False)
    switch = await Switch.start(switch_sip_settings(), SWITCH_RTP, [trunk], [])
    try:
        callee = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        await asyncio.wait_for(answered(callee), 10)
        agent = await switch.call_agent(f"sip:agent3@{agent_ua.address}")
        await asyncio.wait_for(answered(agent), 10)
        for ua in (callee_ua, agent_ua):
            await ua.wait_for("confirmed", 5)
            assert (await ua.wait_for("media", 5))["codec"] in ("PCMU", "PCMA")
        recording = tmp_path / "call.wav"
        await switch.bridge(callee, agent, recording)
        await asyncio.sleep(BRIDGED_S)
        assert callee.leg.stats.packets_relayed > 50 and agent.leg.stats.packets_relayed > 50

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
    assert callee_ua.recording is not None and agent_ua.recording is not None
    assert_tone(agent_ua.recording, 0, CALLEE_HZ, "agent heard")
    assert_tone(callee_ua.recording, 0, AGENT_HZ, "callee heard")
    assert_tone(recording, 0, CALLEE_HZ, "recording, callee channel")
    assert_tone(recording, 1, AGENT_HZ, "recording, agent channel")
