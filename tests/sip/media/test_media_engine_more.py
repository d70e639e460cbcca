import asyncio
import random
import wave

import numpy as np
from media_peers import call, wait_for

from sip.media import g711
from sip.media.dtmf import event_payloads
from sip.media.sdp import SdpNegotiator


def tone(frequency, start_sample, count, codec):
    t = (start_sample + np.arange(count)) / 8000
    return g711.encode((np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16), codec)


async def test_recording_places_jittered_reordered_audio_by_timestamp(engine, peers, tmp_path):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, _ = await call(engine, peers, "agent", we_offer=False)
    path = tmp_path / "jitter.wav"
    bridge = engine.bridge(callee_leg, agent_leg, path)
    frames = [(1000 + i, 80_000 + 160 * i, tone(440, 160 * i, 160, "PCMU")) for i in range(50)]
    order = list(range(50))
    for i in range(0, 48, 3):  # swap neighbours: reordering
        order[i], order[i + 1] = order[i + 1], order[i]
    rng = random.Random(7)
    for i in order:
        seq, ts, payload = frames[i]
        callee.send(payload, seq=seq, ts=ts)
        await asyncio.sleep(rng.uniform(0, 0.008))  # jitter
    await wait_for(lambda: callee_leg.stats.packets_in == 50)
    engine.unbridge(bridge)
    await bridge.wait_closed()
    with wave.open(str(path)) as wav:
        recorded = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)[:, 0]
    expected = g711.decode(b"".join(p for _, _, p in frames), "PCMU")
    assert np.array_equal(recorded[:expected.size], expected)  # sample-exact, nothing shifted
    assert callee_leg.stats.lost == 0


async def test_remote_hold_stops_relay_towards_it_and_resume_continues_the_stream(engine, peers):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    engine.bridge(callee_leg, agent_leg)
    await agent.send_tone(1000, 5)
    await wait_for(lambda: len(callee.received) == 5)
    hold_answer = callee_leg.answer(callee.sdp.make_offer(direction="sendonly").serialize())
    assert "a=recvonly" in hold_answer and callee_leg.negotiated.direction == "recvonly"
    await agent.send_tone(1000, 5)
    await callee.send_tone(440, 3)  # music on hold still reaches the agent
    await wait_for(lambda: len(agent.received) == 3)
    assert len(callee.received) == 5
    callee.sdp.receive_answer(hold_answer)
    resume_answer = callee_leg.answer(callee.sdp.make_offer().serialize())
    assert "a=sendrecv" in resume_answer
    await agent.send_tone(1000, 5)
    await wait_for(lambda: len(callee.received) == 10)
    seqs = [p.sequence for _, p, _ in callee.received]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))


async def test_reoffer_with_a_new_address_relatches(engine, peers):
    leg, first = await call(engine, peers, "callee")
    first.send(b"\xff" * 160)
    await wait_for(lambda: leg.stats.packets_in == 1)
    moved = await peers()
    moved.sdp = SdpNegotiator("127.0.0.1", moved.port)
    _, moved.negotiated = moved.sdp.receive_offer(leg.make_offer())
    moved.sdp = SdpNegotiator("127.0.0.1", moved.port)
    leg.answer(moved.sdp.make_offer().serialize())  # remote re-INVITE from its new address
    moved.aim(leg)
    moved.send(b"\xff" * 160)
    await wait_for(lambda: leg.stats.packets_in == 2)
    first.send(b"\xff" * 160)  # the old address is no longer accepted
    await wait_for(lambda: leg.stats.packets_ignored == 1)
    await leg.send_dtmf("1", duration_ms=20)
    assert moved.received and not first.received


async def test_dtmf_is_relayed_with_the_other_legs_payload_type_and_reported(engine, peers):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg = await engine.allocate_leg("agent")
    agent = await peers()
    agent.sdp = SdpNegotiator("127.0.0.1", agent.port, dtmf_payload_type=96)
    await agent.connect_as_offerer(agent_leg)
    assert agent_leg.negotiated.dtmf_payload_type == 96
    engine.bridge(callee_leg, agent_leg)
    heard = []
    callee_leg.on_dtmf = heard.append
    packets = event_payloads("9", 60)
    for payload, first in packets:
        callee.send(payload, pt=101, ts=4000, marker=first)
        callee.seq += 1
    await wait_for(lambda: len(agent.received) == len(packets) and heard)
    assert {p.payload_type for _, p, _ in agent.received} == {96}
    assert [d.digit for d in heard] == ["9"]


async def test_no_inactivity_while_the_remote_is_not_expected_to_send():
    from media_peers import FakePeer, media_settings

    from sip.media.engine import MediaEngine

    engine = MediaEngine(media_settings(inactivity_timeout_s=0.15, inactivity_check_interval_s=0.03))
    try:
        leg = await engine.allocate_leg("held")
        peer = await FakePeer.start()
        fired = []
        leg.on_inactivity = fired.append
        leg.answer(peer.sdp.make_offer(direction="recvonly").serialize())  # remote only receives: we are sendonly
        await asyncio.sleep(0.4)
        assert fired == []
        leg.answer(peer.sdp.make_offer(direction="sendrecv").serialize())
        await wait_for(lambda: fired == [leg], timeout_s=1)
        peer.close()
    finally:
        await engine.close()


async def test_garbage_datagrams_are_counted_never_raised(engine, peers, tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    engine.bridge(callee_leg, agent_leg, tmp_path / "fuzz.wav")
    source = ("127.0.0.1", callee.port)
    callee_leg.datagram_received(b"\x80\x00" + bytes(10), source)  # latch onto the peer's address
    base = callee_leg.stats.packets_ignored

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=64) | st.binary(min_size=2, max_size=40).map(lambda b: b"\xa0" + b))
    def feed(datagram):
        callee_leg.datagram_received(datagram, source)

    feed()
    assert callee_leg.stats.packets_ignored > base
    padded = bytearray(b"\xa0\x00" + bytes(10) + b"\x01\x00")  # padding bit, padding length 0: invalid
    before = callee_leg.stats.packets_ignored
    callee_leg.datagram_received(bytes(padded), source)
    assert callee_leg.stats.packets_ignored == before + 1
