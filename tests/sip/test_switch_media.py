"""Switch bridge / unbridge / play / hold on real sockets: RTP from the callee reaches the agent through our
relay, the recording is written, an announcement reaches the callee, and hold re-INVITEs with sendonly."""

from __future__ import annotations

import asyncio
import socket
import struct
import wave
from pathlib import Path

import pytest

from sip.dialog import MediaUpdated, SessionEnded
from sip.endpoint import SipEndpoint
from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import Answered, Switch, SwitchError
from sip.transaction import Timers
from tests.sip.fake_carrier import Carrier

ROOT = Path(__file__).resolve().parents[2]
ANNOUNCEMENT = ROOT / "config" / "announcements" / "abandoned.wav"
RTP = RtpSettings(port_min=52000, port_max=52999)


def rtp_packet(seq: int, ts: int, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + b"\xff" * 160


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def drain(sock: socket.socket, wait_s: float) -> list[bytes]:
    await asyncio.sleep(wait_s)
    packets = []
    while True:
        try:
            packets.append(sock.recv(2048))
        except BlockingIOError:
            return packets


async def answered(call) -> None:  # type: ignore[no-untyped-def]
    async for event in call.events():
        if isinstance(event, Answered):
            return
        raise AssertionError(f"unexpected {event}")


@pytest.fixture
async def world():  # type: ignore[no-untyped-def]
    endpoint = SipEndpoint(Timers(0.05, 0.4, 0.5))
    await endpoint.start(("127.0.0.1",), 0, ("udp",))
    carrier = Carrier(endpoint)
    carrier.challenge_invites = False
    port = next(iter(endpoint.transport.locals.values())).port
    trunk = TrunkSettings(name="carrier", host="127.0.0.1", port=port, options_enabled=False)
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), t1_ms=50, stop_grace_s=0.5)
    switch = await Switch.start(sip, RTP, [trunk], [])
    callee_rtp, agent_rtp = udp_socket(), udp_socket()
    carrier.rtp_ports = {"+15551230042": callee_rtp.getsockname()[1], "agent9": agent_rtp.getsockname()[1]}
    yield switch, carrier, port, callee_rtp, agent_rtp
    await switch.stop()
    await endpoint.close()
    callee_rtp.close()
    agent_rtp.close()


async def test_bridge_relays_and_records_then_play_reaches_the_callee(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    switch, carrier, port, callee_rtp, agent_rtp = world
    callee = await switch.originate("carrier", "+15551230042", "+15550001111", {}, 5)
    await answered(callee)
    agent = await switch.call_agent(f"sip:agent9@127.0.0.1:{port}")
    await answered(agent)
    recording = tmp_path / "call.wav"
    await switch.bridge(callee, agent, recording)
    for seq in range(10):
        callee_rtp.sendto(rtp_packet(seq, seq * 160), callee.leg.local_address)
    for seq in range(10):
        agent_rtp.sendto(rtp_packet(seq, seq * 160, 0x9999), agent.leg.local_address)
    assert len(await drain(agent_rtp, 0.2)) == 10
    assert len(await drain(callee_rtp, 0.0)) == 10
    await switch.unbridge(callee, agent)
    with wave.open(str(recording)) as wav:
        assert wav.getnchannels() == 2 and wav.getnframes() > 0
    with pytest.raises(SwitchError):
        await switch.unbridge(callee, agent)
    await switch.play(callee, ANNOUNCEMENT)
    with wave.open(str(ANNOUNCEMENT)) as wav:
        expected = -(-wav.getnframes() // 160)
    assert len(await drain(callee_rtp, 0.05)) == expected
    await switch.hangup(callee)
    await switch.hangup(agent)
    await asyncio.wait_for(asyncio.gather(callee.done, agent.done), 3)


async def test_hold_and_resume_send_reinvites(world) -> None:  # type: ignore[no-untyped-def]
    switch, carrier, port, callee_rtp, agent_rtp = world
    callee = await switch.originate("carrier", "+15551230042", "+15550001111", {}, 5)
    await answered(callee)
    await switch.hold(callee)
    await asyncio.sleep(0.2)
    await switch.resume(callee)
    await asyncio.sleep(0.2)
    offers = [e.sdp for e in carrier.session_events if isinstance(e, MediaUpdated)]
    assert [b"a=sendonly" in offer for offer in offers] == [True, False]
    assert [b"a=sendrecv" in offer for offer in offers] == [False, True]
    assert callee.state == "answered"  # both re-INVITEs were answered 200 and ACKed
    await switch.hangup(callee)
    ended = await asyncio.wait_for(asyncio.shield(callee.done), 3)
    assert ended.by == "local"
    await asyncio.sleep(0.1)
    assert SessionEnded("remote", "bye") in carrier.session_events


async def test_ended_legs_report_their_media_quality_per_trunk_and_for_agents(world) -> None:  # type: ignore[no-untyped-def]
    switch, carrier, port, callee_rtp, agent_rtp = world
    ended: list = []
    switch.on_media_ended = lambda peer, quality: ended.append((peer, quality))
    callee = await switch.originate("carrier", "+15551230042", "+15550001111", {}, 5)
    await answered(callee)
    agent = await switch.call_agent(f"sip:agent9@127.0.0.1:{port}")
    await answered(agent)
    for seq in range(20):
        if seq not in (5, 6, 7):  # three lost on the way from the callee
            callee_rtp.sendto(rtp_packet(seq, seq * 160), callee.leg.local_address)
    for seq in range(10):
        agent_rtp.sendto(rtp_packet(seq, seq * 160, 0x9999), agent.leg.local_address)
    await asyncio.sleep(0.2)
    await switch.hangup(callee)
    await switch.hangup(agent)
    await asyncio.wait_for(asyncio.gather(callee.done, agent.done), 3)
    qualities = dict(ended)
    assert set(qualities) == {"carrier", "agents"}
    assert (qualities["carrier"].packets_received, qualities["carrier"].packets_lost) == (17, 3)
    assert (qualities["agents"].packets_received, qualities["agents"].packets_lost) == (10, 0)
    # sent back to back while the timestamps step 20 ms: the jitter estimate has grown towards 20 ms
    assert 0.005 < qualities["carrier"].jitter_s < 0.02
    assert qualities["carrier"].remote_reported_lost is None  # the carrier sent no RTCP
