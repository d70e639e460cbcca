import asyncio
import wave

import numpy as np
import pytest
from media_peers import call, dominant_frequency, media_settings, wait_for

from sip.media.announcement import Announcement
from sip.media.dtmf import DtmfReceiver, event_payloads
from sip.media.engine import MediaEngine, MediaError
from sip.media.ports import PortsExhausted


def tone_announcement(tmp_path, seconds=0.5, frequency=600.0, rate=8000, channels=1):
    path = tmp_path / f"tone_{rate}_{channels}.wav"
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * frequency * t) * 10000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(pcm, channels).tobytes())
    return path


async def test_relay_carries_each_tone_to_the_other_side_and_records_both(engine, peers, tmp_path):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    recording = tmp_path / "rec" / "call.wav"
    bridge = engine.bridge(callee_leg, agent_leg, recording)
    await asyncio.gather(callee.send_tone(440, 60), agent.send_tone(1000, 60))
    await wait_for(lambda: len(agent.received) == 60 and len(callee.received) == 60)
    assert abs(dominant_frequency(agent.audio()) - 440) < 10
    assert abs(dominant_frequency(callee.audio()) - 1000) < 10
    # the agent sees the agent leg's own SSRC with contiguous sequence numbers and 160-sample steps
    packets = [p for _, p, _ in agent.received]
    assert {p.ssrc for p in packets} == {agent_leg.ssrc}
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in zip(packets, packets[1:]))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in zip(packets, packets[1:]))
    engine.unbridge(bridge)
    await bridge.wait_closed()
    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert abs(dominant_frequency(frames[:, 0]) - 440) < 10
    assert abs(dominant_frequency(frames[:, 1]) - 1000) < 10
    assert np.count_nonzero(frames[:, 0]) >= 60 * 160 * 0.9  # every packet placed
    assert callee_leg.stats.packets_relayed == 60 and agent_leg.stats.packets_out == 60
    assert sum(callee_leg.stats.relay_delay_counts) == 60


async def test_pcmu_pcma_transcoding(engine, peers):
    callee_leg, callee = await call(engine, peers, "callee", codecs=("PCMA",))
    agent_leg, agent = await call(engine, peers, "agent", codecs=("PCMU",), we_offer=False)
    assert (callee_leg.negotiated.codec, agent_leg.negotiated.codec) == ("PCMA", "PCMU")
    engine.bridge(callee_leg, agent_leg)
    await asyncio.gather(callee.send_tone(440, 40), agent.send_tone(1000, 40))
    await wait_for(lambda: len(agent.received) == 40 and len(callee.received) == 40)
    assert {p.payload_type for _, p, _ in agent.received} == {0}
    assert {p.payload_type for _, p, _ in callee.received} == {8}
    assert abs(dominant_frequency(agent.audio()) - 440) < 10
    assert abs(dominant_frequency(callee.audio()) - 1000) < 10


async def test_sequence_timestamp_and_ssrc_continue_across_rebridge_and_playback(engine, peers, tmp_path):
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    first_leg, first = await call(engine, peers, "callee-1")
    second_leg, second = await call(engine, peers, "callee-2")
    second.seq, second.ts = 60000, 3_000_000_000  # a very different numbering space
    bridge = engine.bridge(first_leg, agent_leg)
    await first.send_tone(440, 10)
    await wait_for(lambda: len(agent.received) == 10)
    engine.unbridge(bridge)
    await engine.play(agent_leg, Announcement.load(tone_announcement(tmp_path, 0.1)))
    bridge = engine.bridge(second_leg, agent_leg)
    await second.send_tone(700, 10)
    await wait_for(lambda: len(agent.received) == 25)
    packets = [(t, p) for t, p, _ in agent.received]
    assert {p.ssrc for _, p in packets} == {agent_leg.ssrc}
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for (_, a), (_, b) in zip(packets, packets[1:]))
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for (_, a), (_, b) in zip(packets, packets[1:])]
    assert all(160 <= step < 0x80000000 for step in steps)  # always forward
    markers = [i for i, (_, p) in enumerate(packets) if p.marker]
    assert markers == [0, 10, 15]  # new source, announcement, new source
    for boundary in (10, 15):  # across a switch of source the timestamp advances with the wall clock
        wall_gap_samples = (packets[boundary][0] - packets[boundary - 1][0]) * 8000
        assert abs(steps[boundary - 1] - wall_gap_samples) <= 160 + 0.02 * 8000
    assert all(step == 160 for i, step in enumerate(steps) if i + 1 not in (10, 15))


async def test_symmetric_rtp_latches_onto_the_first_source(engine, peers):
    leg = await engine.allocate_leg("natted")
    peer = await peers()
    offer = leg.make_offer()
    answer, peer.negotiated = peer.sdp.receive_offer(offer)
    leg.apply_answer(answer.serialize().replace(f" {peer.port} RTP", " 9 RTP"))  # the SDP lies (NAT)
    assert leg.remote_address == ("127.0.0.1", 9)
    stranger = await peers()
    peer.aim(leg)
    peer.send(b"\xff" * 160)
    await wait_for(lambda: leg.stats.packets_in == 1)
    assert leg.remote_address == ("127.0.0.1", peer.port)
    stranger.negotiated = peer.negotiated
    stranger.send(b"\xff" * 160, to=leg.local_address)
    await wait_for(lambda: leg.stats.packets_ignored == 1)
    await leg.send_dtmf("5", duration_ms=40)
    assert len(peer.received) >= 3 and not stranger.received
    assert leg.stats.packets_in == 1


async def test_announcement_is_paced_every_20ms_without_drift(engine, peers, tmp_path):
    leg, peer = await call(engine, peers, "callee", codecs=("PCMA",))
    announcement = Announcement.load(tone_announcement(tmp_path, 1.0), codec="PCMU")
    began = asyncio.get_running_loop().time()
    await engine.play(leg, announcement)
    elapsed = asyncio.get_running_loop().time() - began
    await wait_for(lambda: len(peer.received) == 50)
    times = np.array([t for t, _, _ in peer.received])
    packets = [p for _, p, _ in peer.received]
    assert {p.payload_type for p in packets} == {8}  # converted to the negotiated codec
    assert abs(np.median(np.diff(times)) - 0.020) < 0.003
    assert abs((times[-1] - times[0]) - 0.98) < 0.03  # 49 intervals: no drift accumulates
    assert 0.95 < elapsed < 1.1
    assert [(p.timestamp - packets[0].timestamp) for p in packets] == [160 * i for i in range(50)]
    assert abs(dominant_frequency(peer.audio()) - 600) < 10


async def test_dtmf_send_is_decodable_and_receive_reports_each_digit_once(engine, peers):
    leg, peer = await call(engine, peers, "agent")
    await leg.send_dtmf("1#", duration_ms=100)
    digits = []
    receiver = DtmfReceiver(digits.append)
    for _, packet, _ in peer.received:
        assert packet.payload_type == 101
        receiver.feed(packet.payload, packet.timestamp)
    assert [(d.digit, d.duration_ms, d.complete) for d in digits] == [("1", 100, True), ("#", 100, True)]
    got = []
    leg.on_dtmf = got.append
    for ts, digit in ((8000, "7"), (16000, "*")):
        for payload, first in event_payloads(digit, 160):
            peer.send(payload, pt=101, ts=ts, marker=first)
            peer.seq += 1
    await wait_for(lambda: len(got) == 2)
    await asyncio.sleep(0.05)
    assert [(d.digit, d.duration_ms) for d in got] == [("7", 160), ("*", 160)]


async def test_dtmf_needs_telephone_event(engine, peers):
    leg = await engine.allocate_leg("x")
    with pytest.raises(MediaError, match="no negotiated media"):
        await leg.send_dtmf("1")


async def test_inactivity_callback_fires_once_when_rtp_stops():
    engine = MediaEngine(media_settings(inactivity_timeout_s=0.3, inactivity_check_interval_s=0.05))
    try:
        from media_peers import FakePeer
        leg = await engine.allocate_leg("callee")
        peer = await FakePeer.start()
        await peer.connect_as_answerer(leg)
        peer.aim(leg)
        fired = []
        leg.on_inactivity = lambda which: fired.append(asyncio.get_running_loop().time())
        for _ in range(20):  # 0.4 s of RTP keeps the leg alive past the timeout
            peer.send(b"\xff" * 160)
            peer.seq += 1
            await asyncio.sleep(0.02)
        assert fired == []
        stopped = asyncio.get_running_loop().time()
        await wait_for(lambda: fired, timeout_s=2)
        assert 0.28 <= fired[0] - stopped <= 0.9  # not before the timeout; the upper bound allows a busy machine
        await asyncio.sleep(0.3)
        assert len(fired) == 1
        peer.close()
    finally:
        await engine.close()


async def test_loss_is_counted_per_rfc3550(engine, peers):
    leg, peer = await call(engine, peers, "callee")
    await peer.send_tone(440, 50, spacing_s=0.001, skip=frozenset({1010, 1011, 1030}))
    await wait_for(lambda: leg.stats.packets_in == 47)
    assert leg.stats.lost == 3


async def test_ipv6_leg(peers):
    engine = MediaEngine(media_settings(bind_host="::1"))
    try:
        leg, peer = await call(engine, peers, "v6", host="::1")
        assert "c=IN IP6 ::1" in leg.make_offer()
        await leg.send_dtmf("9", duration_ms=40)
        assert peer.received
    finally:
        await engine.close()


async def test_port_pool_exhaustion_and_release():
    engine = MediaEngine(media_settings(port_min=49990, port_max=49993))  # two pairs
    try:
        legs = [await engine.allocate_leg("a"), await engine.allocate_leg("b")]
        with pytest.raises(PortsExhausted, match="in use"):
            await engine.allocate_leg("c")
        engine.release(legs[0])
        engine.release(legs[0])  # idempotent
        assert (await engine.allocate_leg("d")).local_address[1] == legs[0].local_address[1]
    finally:
        await engine.close()


async def test_bridge_misuse_is_refused(engine, peers):
    a, _ = await call(engine, peers, "a")
    b, _ = await call(engine, peers, "b")
    c, _ = await call(engine, peers, "c")
    engine.bridge(a, b)
    with pytest.raises(MediaError, match="already bridged"):
        engine.bridge(a, c)
    engine.release(c)
    with pytest.raises(MediaError, match="released"):
        engine.bridge(c, a)


async def test_recording_on_disk_is_readable_before_the_call_ends(engine, peers, tmp_path):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    path = tmp_path / "live.wav"
    bridge = engine.bridge(callee_leg, agent_leg, path)
    await asyncio.gather(callee.send_tone(440, 65, spacing_s=0.02), agent.send_tone(1000, 65, spacing_s=0.02))
    with wave.open(str(path)) as wav:  # not finalised: the periodic header update must make it readable
        frames = wav.getnframes()
        data = np.frombuffer(wav.readframes(frames), "<i2").reshape(-1, 2)
    assert frames >= 8000 * (1.3 - 0.5 - 0.2 - 0.15)  # at most flush interval + jitter allowance behind
    assert abs(dominant_frequency(data[:, 0]) - 440) < 10
    engine.unbridge(bridge)
    await bridge.wait_closed()
