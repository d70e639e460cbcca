"""RFC 3264 5.1: an offering leg accepts media on the payload types it offered before the answer arrives."""

import asyncio

import numpy as np

from media_peers import call, wait_for

from sip.media import g711

TONE = np.full(160, 1000, dtype=np.int16)
PAYLOAD = g711.encode(TONE, "PCMU")


async def offered_but_unanswered(engine, peers, label):
    """A leg that has sent its offer; the peer built its answer but the leg has not applied it yet."""
    leg = await engine.allocate_leg(label)
    peer = await peers()
    answer, peer.negotiated = peer.sdp.receive_offer(leg.make_offer())
    peer.aim(leg)
    return leg, peer, answer.serialize()


async def test_packet_between_offer_and_answer_on_a_bridged_leg_reaches_the_other_side(engine, peers, tmp_path):
    callee_leg, callee, answer = await offered_but_unanswered(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    bridge = engine.bridge(callee_leg, agent_leg, tmp_path / "call.wav")
    callee.send(PAYLOAD, pt=0, seq=500)
    await wait_for(lambda: len(agent.received) == 1)
    _, packet, _ = agent.received[0]
    assert (packet.payload_type, packet.payload, packet.ssrc) == (0, PAYLOAD, agent_leg.ssrc)
    callee_leg.apply_answer(answer)
    callee.send(PAYLOAD, pt=0, seq=501, ts=callee.ts + 160)
    await wait_for(lambda: len(agent.received) == 2)
    first, second = (p for _, p, _ in agent.received)
    assert (second.sequence - first.sequence) & 0xFFFF == 1  # one continuous stream across the answer
    assert callee_leg.stats.packets_relayed == 2 and callee_leg.stats.packets_ignored == 0
    engine.unbridge(bridge)
    await bridge.wait_closed()


async def test_early_pcma_is_transcoded_for_a_pcmu_agent(engine, peers):
    callee_leg, callee, _ = await offered_but_unanswered(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", codecs=("PCMU",), we_offer=False)
    engine.bridge(callee_leg, agent_leg)
    callee.send(g711.encode(TONE, "PCMA"), pt=8)
    await wait_for(lambda: len(agent.received) == 1)
    _, packet, _ = agent.received[0]
    assert packet.payload_type == 0 and packet.payload == PAYLOAD


async def test_payload_type_we_did_not_offer_is_dropped_before_the_answer(engine, peers):
    callee_leg, callee, _ = await offered_but_unanswered(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    engine.bridge(callee_leg, agent_leg)
    callee.send(PAYLOAD, pt=18)  # G.729: not in our offer
    callee.send(PAYLOAD, pt=0, seq=callee.seq + 1)  # a witness that the socket path works
    await wait_for(lambda: len(agent.received) == 1)
    await asyncio.sleep(0.05)
    assert [p.payload_type for _, p, _ in agent.received] == [0]
    assert callee_leg.stats.packets_ignored == 1


async def test_before_the_answer_we_send_nothing_back_to_an_unverified_source(engine, peers):
    callee_leg, callee, _ = await offered_but_unanswered(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    engine.bridge(callee_leg, agent_leg)
    callee.send(PAYLOAD, pt=0)
    await wait_for(lambda: callee_leg.stats.packets_in == 1)
    assert callee_leg.remote_address is None
    agent.send(PAYLOAD)
    await wait_for(lambda: agent_leg.stats.packets_in == 1)
    await asyncio.sleep(0.05)
    assert callee.received == []


async def test_early_source_on_the_answer_host_keeps_the_latch_and_its_packet_is_relayed_at_bridge(engine, peers):
    """The callee's RTP may leave from another port than its SDP names (SIPp's play_pcap_audio, port-changing
    NAT keeps the host): the early packet is kept and relayed by bridge() right after the answer."""
    callee_leg, callee, answer = await offered_but_unanswered(engine, peers, "callee")
    sender = await peers()
    sender.negotiated = callee.negotiated
    sender.aim(callee_leg)
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    sender.send(PAYLOAD, pt=0)
    await wait_for(lambda: callee_leg.stats.packets_in == 1)
    callee_leg.apply_answer(answer)
    engine.bridge(callee_leg, agent_leg)
    await wait_for(lambda: len(agent.received) == 1)
    assert callee_leg.remote_address == ("127.0.0.1", sender.port)  # symmetric RTP: back to where it came from
    callee.send(PAYLOAD, pt=0, seq=callee.seq + 1)  # the SDP port itself is now a different source
    await wait_for(lambda: callee_leg.stats.packets_ignored == 1)
    assert len(agent.received) == 1


async def test_early_source_other_than_the_answer_host_loses_the_latch(engine, peers):
    """A stranger who sends first before the answer does not keep the leg: the answer's address checks apply."""
    callee_leg, callee, answer = await offered_but_unanswered(engine, peers, "callee")
    stranger = await peers("127.0.0.2")
    stranger.negotiated = callee.negotiated
    stranger.aim(callee_leg)
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    stranger.send(PAYLOAD, pt=0)
    await wait_for(lambda: callee_leg.stats.packets_in == 1)
    callee.send(PAYLOAD, pt=0)  # the real callee is refused while the stranger holds the early latch...
    await wait_for(lambda: callee_leg.stats.packets_ignored == 1)
    callee_leg.apply_answer(answer)  # ...until the answer names the callee's address: re-latch
    engine.bridge(callee_leg, agent_leg)
    assert agent.received == []  # the stranger's held packet was discarded with its latch
    callee.send(PAYLOAD, pt=0, seq=callee.seq + 1)
    await wait_for(lambda: len(agent.received) == 1)
    assert callee_leg.remote_address == ("127.0.0.1", callee.port)
    stranger.send(PAYLOAD, pt=0, seq=stranger.seq + 2)
    callee.send(PAYLOAD, pt=0, seq=callee.seq + 2)
    await wait_for(lambda: len(agent.received) == 2)
    await asyncio.sleep(0.05)
    assert len(agent.received) == 2 and callee_leg.stats.packets_ignored == 2


async def test_packet_received_just_before_bridge_is_relayed_by_bridge(engine, peers):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    callee.send(PAYLOAD)
    await wait_for(lambda: callee_leg.stats.packets_in == 1)
    engine.bridge(callee_leg, agent_leg)
    await wait_for(lambda: len(agent.received) == 1)
    assert agent.received[0][1].payload == PAYLOAD


async def test_packet_older_than_one_ptime_is_not_relayed_by_bridge(engine, peers):
    callee_leg, callee = await call(engine, peers, "callee")
    agent_leg, agent = await call(engine, peers, "agent", we_offer=False)
    callee.send(PAYLOAD)
    await wait_for(lambda: callee_leg.stats.packets_in == 1)
    await asyncio.sleep(0.05)  # > 20 ms ptime: stale audio
    engine.bridge(callee_leg, agent_leg)
    await asyncio.sleep(0.05)
    assert agent.received == [] and callee_leg.stats.packets_relayed == 0
