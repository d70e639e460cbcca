"""The engine on uvloop (the production loop): relay, playback and DTMF."""

import asyncio
from pathlib import Path

import uvloop
from media_peers import FakePeer, dominant_frequency, media_settings, wait_for

from sip.media.announcement import Announcement
from sip.media.engine import MediaEngine

REPO_ANNOUNCEMENT = Path(__file__).resolve().parents[3] / "config" / "announcements" / "abandoned.wav"


async def scenario() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    engine = MediaEngine(media_settings())
    callee, agent = await FakePeer.start(), await FakePeer.start()
    try:
        callee_leg, agent_leg = await engine.allocate_leg("callee"), await engine.allocate_leg("agent")
        await callee.connect_as_answerer(callee_leg)
        await agent.connect_as_offerer(agent_leg)
        callee.aim(callee_leg)
        agent.aim(agent_leg)
        engine.bridge(callee_leg, agent_leg)
        await asyncio.gather(callee.send_tone(440, 40), agent.send_tone(1000, 40))
        await wait_for(lambda: len(agent.received) == 40 and len(callee.received) == 40)
        assert abs(dominant_frequency(agent.audio()) - 440) < 10
        assert abs(dominant_frequency(callee.audio()) - 1000) < 10
        await agent_leg.send_dtmf("4", duration_ms=40)
        assert sum(p.payload_type == 101 for _, p, _ in agent.received) == 4  # 1 update + 3 end packets
        clip = Announcement.load(REPO_ANNOUNCEMENT).for_codec("PCMU")
        short = Announcement("PCMU", 20, clip.frames[:10], clip.pcm[:1600])
        await engine.play(callee_leg, short)
        await wait_for(lambda: len(callee.received) == 50)
    finally:
        callee.close()
        agent.close()
        await engine.close()


def test_engine_runs_on_uvloop():
    uvloop.run(scenario())
