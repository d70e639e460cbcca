"""The demo's simulated carrier over SIP, driven by the real switch: every behaviour maps to the outcome the
engine expects."""

from __future__ import annotations

import pytest

from dialer.demo.carrier import DemoCarrier
from dialer.demo.peer import write_voice_wav
from dialer.demo.settings import CarrierMix
from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import Answered, Ended, Failed, Switch

pytestmark = pytest.mark.timeout(30)

ONLY = {"answered": dict(answer_rate=1.0), "busy": dict(busy_rate=1.0), "invalid": dict(invalid_rate=1.0),
        "congestion": dict(congestion_rate=1.0), "480": dict(no_answer_480_share=1.0),
        "ring_forever": dict(no_answer_480_share=0.0)}
NONE = dict(answer_rate=0.0, busy_rate=0.0, invalid_rate=0.0, congestion_rate=0.0)


@pytest.mark.parametrize(("behaviour", "expected"), [
    ("busy", ("Failed", 486, "busy")), ("invalid", ("Failed", 404, "invalid")),
    ("congestion", ("Failed", 503, "congestion")), ("480", ("Failed", 480, "no_answer")),
    ("ring_forever", ("Failed", 487, "no_answer")), ("answered", ("Ended", "remote")),
])
async def test_carrier_behaviours_reach_the_switch_as_outcomes(tmp_path, behaviour, expected) -> None:
    mix = CarrierMix(**{**NONE, **ONLY[behaviour]}, ring_min_s=0.1, ring_max_s=0.2, no_answer_ring_s=0.3,
                     talk_min_s=0.5, talk_max_s=0.6)
    carrier = await DemoCarrier.open(host="127.0.0.1", rtp_ports=(20000, 21999), mix=mix, seed=1,
                                     audio_wav=write_voice_wav(tmp_path / "voice.wav", 170.0, 1))
    switch = await Switch.start(SipSettings(port=0, transports=("udp",)), RtpSettings(port_min=28000, port_max=29999),
                                [TrunkSettings(name="demo", host="127.0.0.1", port=carrier.port, options_enabled=False)])
    try:
        call = await switch.originate("demo", "+13125550000", "+12025550100", {}, ring_timeout_s=1.5)
        events = [event async for event in call.events()]
    finally:
        await switch.stop()
        await carrier.close()
    last = events[-1]
    if expected[0] == "Failed":
        assert isinstance(last, Failed) and (last.sip_code, last.outcome) == expected[1:], events
    else:
        assert any(isinstance(e, Answered) for e in events) and isinstance(last, Ended) and last.by == "remote"
        assert call.leg.stats.packets_in > 10  # the callee talked: its audio reached our leg
    assert carrier.given == {behaviour if behaviour in ("answered", "busy", "invalid", "congestion")
                             else "no_answer": 1}
