"""Fake RTP peers on loopback (asyncio datagram endpoints), helpers, and settings on the 40000-49999 range."""

from __future__ import annotations

import asyncio
import math

import numpy as np

from sip.media import g711
from sip.media.engine import MediaLeg
from sip.media.rtp import RtpPacket, build_rtp, parse_rtp
from sip.media.sdp import SdpNegotiator
from sip.settings import RtpSettings

TEST_PORT_MIN, TEST_PORT_MAX = 40000, 49999


def media_settings(**overrides) -> RtpSettings:
    values = {"port_min": TEST_PORT_MIN, "port_max": TEST_PORT_MAX} | overrides
    return RtpSettings(**values)


class FakePeer(asyncio.DatagramProtocol):
    """A remote RTP endpoint: negotiates with its own SdpNegotiator, sends tones, keeps what it receives."""

    def __init__(self, codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> None:
        self.codecs = codecs
        self.received: list[tuple[float, RtpPacket, tuple]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.sdp: SdpNegotiator | None = None
        self.ssrc = 0x1234_0000 + id(self) % 0xFFFF
        self.seq = 1000
        self.ts = 50_000
        self.arrived = asyncio.Event()

    @classmethod
    async def start(cls, host: str = "127.0.0.1", codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> "FakePeer":
        peer = cls(codecs)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        peer.sdp = SdpNegotiator(host, peer.port, codecs)
        return peer

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.received.append((asyncio.get_running_loop().time(), parse_rtp(data), addr))
        self.arrived.set()

    def close(self) -> None:
        self.transport.close()

    async def connect_as_answerer(self, leg: MediaLeg) -> None:
        """The leg offers (we are the callee)."""
        answer, self.negotiated = self.sdp.receive_offer(leg.make_offer())
        leg.apply_answer(answer.serialize())

    async def connect_as_offerer(self, leg: MediaLeg) -> None:
        """We offer (we are an agent's softphone calling in)."""
        self.negotiated = self.sdp.receive_answer(leg.answer(self.sdp.make_offer().serialize()))

    def send(self, payload: bytes, pt: int | None = None, seq: int | None = None, ts: int | None = None,
             marker: bool = False, to: tuple | None = None, ssrc: int | None = None) -> None:
        packet = build_rtp(self.negotiated.payload_type if pt is None else pt, self.seq if seq is None else seq,
                           self.ts if ts is None else ts, self.ssrc if ssrc is None else ssrc, payload, marker)
        self.transport.sendto(packet, to or self.target)

    @property
    def target(self) -> tuple:
        return self._target

    def aim(self, leg: MediaLeg) -> None:
        self._target = leg.local_address

    async def send_tone(self, frequency: float, packets: int, spacing_s: float = 0.005, skip: frozenset = frozenset()):
        """Send `packets` 20 ms frames of a sine, `spacing_s` apart; sequence numbers in `skip` are not sent."""
        codec = self.negotiated.codec
        for _ in range(packets):
            start = (self.ts - 50_000)
            t = (start + np.arange(160)) / 8000
            pcm = (np.sin(2 * math.pi * frequency * t) * 12000).astype(np.int16)
            if self.seq not in skip:
                self.send(g711.encode(pcm, codec))
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts += 160
            await asyncio.sleep(spacing_s)

    def audio(self) -> np.ndarray:
        packets = [p for _, p, _ in self.received if p.payload_type in (0, 8)]
        if not packets:
            return np.zeros(0, np.int16)
        codec = "PCMU" if packets[0].payload_type == 0 else "PCMA"
        return g711.decode(b"".join(p.payload for p in packets), codec)


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    samples = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


async def wait_for(predicate, timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def call(engine, peers, label, codecs=("PCMU", "PCMA"), we_offer=True, host="127.0.0.1"):
    """A leg with a fake peer negotiated: we offer (callee) or the peer offers (agent)."""
    leg = await engine.allocate_leg(label)
    peer = await peers(host, codecs)
    if we_offer:
        await peer.connect_as_answerer(leg)
    else:
        await peer.connect_as_offerer(leg)
    peer.aim(leg)
    return leg, peer
