"""The Engine on the real SIP switch, against the demo's simulated carrier and agent phones (our own UAs)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from dialer.config import DialerConfig
from dialer.demo.agents import DISPOSITIONS, DemoAgentPhones
from dialer.demo.carrier import DemoCarrier
from dialer.demo.peer import write_voice_wav
from dialer.demo.settings import CarrierMix, DemoAgents
from dialer.runtime import Engine
from tests.dialer.runtime.conftest import TOKEN, engine_config, lead, now_utc, numbers_in_window, wait_for

pytestmark = pytest.mark.timeout(40)


def with_peers(config: DialerConfig, carrier_port: int, agents: DemoAgentPhones, rtp: tuple[int, int]) -> DialerConfig:
    data = config.model_dump()
    data["trunks"][0].update(host="127.0.0.1", port=carrier_port)
    data["agents"] = [{"id": a, "uri": agents.uri(a)} for a in agents.agent_ids]
    data["sip"].update(port=0, transports=["udp"])
    data["rtp"].update(port_min=rtp[0], port_max=rtp[1])
    return DialerConfig.model_validate(data)


async def test_answered_calls_reach_agents_over_sip_with_recordings_and_dispositions(tmp_path: Path) -> None:
    voice = write_voice_wav(tmp_path / "voice.wav", 180, 1)
    mix = CarrierMix(answer_rate=1.0, busy_rate=0, invalid_rate=0, congestion_rate=0, ring_min_s=0.2, ring_max_s=0.4,
                     talk_min_s=1.0, talk_max_s=1.5)
    carrier = await DemoCarrier.open(host="127.0.0.1", rtp_ports=(20000, 21999), audio_wav=voice, mix=mix, seed=3)
    phones = await DemoAgentPhones.open(host="127.0.0.1", rtp_ports=(22000, 23999), audio_wav=voice,
                                        settings=DemoAgents(disposition_min_s=0.1, disposition_max_s=0.3,
                                                            status_poll_s=0.1), count=2, seed=3)
    config = with_peers(engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}, "ring_timeout_s": 10,
                                                          "wrap_up_s": 30}),
                        carrier.port, phones, (28000, 29999))
    engine = Engine(config)
    await engine.start()
    try:
        numbers = numbers_in_window(3)
        await engine.store.add_leads("c1", [lead(n) for n in numbers], now_utc())
        for agent_id in phones.agent_ids:
            await engine.control_call("agent_login", agent_id)
        await wait_for(lambda: engine.live_status()["agents"]["ready"] == 2)
        work = asyncio.create_task(phones.work(f"http://127.0.0.1:{engine.api_port}", TOKEN))
        await engine.control_call("campaign_start", "c1")
        # the third call needs an agent: only a disposition ends the 30 s wrap-up in time
        await wait_for(lambda: carrier.invites == 3, timeout=10)
        await wait_for(lambda: not engine.core.calls, timeout=15)
        await engine.flush()
        await asyncio.sleep(0.8)  # recordings are finished in the background after the bridge ends
        cdrs = [c async for c in engine.store.export_cdrs(campaign="c1")]
        assert len(cdrs) == 3 and all(c.outcome == "answered" and c.agent_id for c in cdrs), cdrs
        await wait_for(lambda: phones.dispositions_sent == 3)
        work.cancel()
        for cdr in cdrs:
            disposition = await engine.store.get_disposition(cdr.call_id)
            assert disposition.agent_id == cdr.agent_id and disposition.disposition in DISPOSITIONS
        for cdr in cdrs:
            with wave.open(cdr.recording_path) as recording:
                assert recording.getnchannels() == 2
                assert recording.getnframes() > 8000 * 0.5  # at least half a second of the conversation
    finally:
        await engine.stop(grace_s=1)
        await carrier.close()
        await phones.close()
