"""Property: whatever sequence of bridges, re-bridges and source restarts, the agent sees one stream: its own SSRC,
sequence numbers +1 each packet, timestamps always moving forward."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.media.rtp import build_rtp, parse_rtp
from sip.media.sdp import SdpNegotiator


class Capture:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def sendto(self, data, addr) -> None:
        self.packets.append(bytes(data))

    def close(self) -> None:
        pass


OPERATION = st.one_of(
    st.tuples(st.just("bridge"), st.integers(0, 1)),
    st.tuples(st.just("unbridge"), st.just(0)),
    st.tuples(st.just("send"), st.integers(1, 5)),
    st.tuples(st.just("restart"), st.integers(0, 2**32 - 1)),  # the source takes a new SSRC and numbering
    st.tuples(st.just("renumber"), st.integers(3001, 65535 - 101)),  # same SSRC, sequence jumps (RFC 3550 A.1)
)


async def test_agent_stream_stays_continuous(engine):
    sources = [await engine.allocate_leg(f"callee-{i}") for i in range(2)]
    agent = await engine.allocate_leg("agent")
    for port, leg in zip((9000, 9002, 9004), (*sources, agent)):
        leg.answer(SdpNegotiator("127.0.0.1", port, ("PCMU",)).make_offer().serialize())
    real_transport = agent._transport
    capture = Capture()
    agent._transport = capture
    numbering = [[0x1000 + i, 100, 1000 * i] for i in range(2)]  # ssrc, seq, ts per source
    state = {"bridge": None, "source": 0, "ssrc": 0x2000}

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(OPERATION, max_size=25))
    def run(operations):
        for name, value in operations:
            if name == "bridge" and state["bridge"] is None:
                state["bridge"] = engine.bridge(sources[value], agent)
                state["source"] = value
            elif name == "unbridge" and state["bridge"] is not None:
                engine.unbridge(state["bridge"])
                state["bridge"] = None
            elif name == "restart":
                state["ssrc"] += 1  # RFC 3550: a restarted stream has a new SSRC
                numbering[state["source"]] = [state["ssrc"], value & 0xFFFF, value ^ 0x5A5A5A5A]
            elif name == "renumber":
                ssrc, seq, ts = numbering[state["source"]]
                numbering[state["source"]] = [ssrc, (seq + value) & 0xFFFF, (ts + value * 977) & 0xFFFFFFFF]
            elif name == "send":
                index = state["source"]
                for _ in range(value):
                    ssrc, seq, ts = numbering[index]
                    sources[index].datagram_received(build_rtp(0, seq, ts, ssrc, b"\xff" * 160),
                                                     ("127.0.0.1", 9000 + 2 * index))
                    numbering[index] = [ssrc, (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF]
        packets = [parse_rtp(p) for p in capture.packets]
        assert {p.ssrc for p in packets} <= {agent.ssrc}
        for a, b in zip(packets, packets[1:]):
            assert (b.sequence - a.sequence) & 0xFFFF == 1
            assert 160 <= (b.timestamp - a.timestamp) & 0xFFFFFFFF < 0x80000000

    try:
        run()
        assert len(capture.packets) > 50  # the property was exercised on a real amount of traffic
    finally:
        agent._transport = real_transport
