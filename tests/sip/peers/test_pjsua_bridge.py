"""The audio path end to end with PJSIP on both sides: a pjsua2 callee (reached by Switch.originate on a trunk
pointing at it) sends 440 Hz, a pjsua2 agent (reached by Switch.call_agent) sends 1000 Hz; the switch bridges them
with recording on. Each side must hear the other's tone, and our two-channel recording must hold 440 Hz on the
callee channel and 1000 Hz on the agent channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.settings import TrunkSettings
from sip.switch import Ended, Switch
from tests.sip.peers.harness import (
    AGENT_HZ, CALLEE_HZ, SWITCH_RTP, assert_tones_crossed, call_and_bridge, switch_sip_settings,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]


@pytest.mark.parametrize("hung_up_by", ["switch", "callee"])
async def test_tones_cross_the_bridge_and_are_recorded(pjsua, tmp_path: Path, hung_up_by: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent3")
    trunk = TrunkSettings(name="pjsua", host="127.0.0.1", port=callee_ua.port, options_enabled=False)
    switch = await Switch.start(switch_sip_settings(), SWITCH_RTP, [trunk], [])
    try:
        callee, agent, recording = await call_and_bridge(
            switch, "pjsua", callee_ua, f"sip:agent3@{agent_ua.address}", agent_ua, tmp_path)

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
