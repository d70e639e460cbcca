"""RTCP with PJSIP on the far side: PJSIP takes our CNAME from our SDES, our report blocks on the stream it sends,
and round-trip samples from the LSR/DLSR we echo; we take its reports on the stream we send it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.sip.peers.harness import AGENT_HZ, CALLEE_HZ, call_and_bridge, start_switch

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]
PJSIP_RTCP_INTERVAL_S = 5.0  # PJMEDIA_RTCP_INTERVAL: PJSIP reports every 5 s, randomised
OUR_INTERVAL_S = 1.0


async def test_pjsip_reads_our_reports_and_we_read_its(pjsua, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent4")
    switch = await start_switch(callee_ua, rtp={"rtcp_interval_s": OUR_INTERVAL_S})
    try:
        callee, agent, _ = await call_and_bridge(
            switch, "pjsua", callee_ua, f"sip:agent4@{agent_ua.address}", agent_ua, tmp_path)
        # two of PJSIP's reports, each answered by one of ours echoing its LSR
        await asyncio.sleep(2 * PJSIP_RTCP_INTERVAL_S + 2 * OUR_INTERVAL_S)
        callee_ua.command("stats")
        stats = await callee_ua.wait_for("stats", 5)
        leg_stats = callee.leg.stats.snapshot()
        their_report = callee.leg.remote_report
        await switch.hangup(callee)
        await switch.hangup(agent)
        await callee_ua.wait_for("stopped", 5)
    finally:
        await switch.stop()
    print(f"PJSIP callee: {stats}; our callee leg: {leg_stats}; its report on our stream: {their_report}")
    assert stats["peer_cname"] == switch.media.cname
    assert stats["reports_on_our_stream"] >= 5
    assert stats["round_trip_samples"] >= 1
    assert leg_stats["rtcp_received"] >= 1 and leg_stats["rtcp_sent"] >= 5
    assert their_report is not None and their_report.ssrc == callee.leg.ssrc
    assert (their_report.fraction_lost, their_report.cumulative_lost) == (0, 0)
