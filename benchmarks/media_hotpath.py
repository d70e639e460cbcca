"""Benchmark: CPU cost of the relay hot path per packet, without sockets (a counting transport stands in).

Measures `MediaLeg.datagram_received` for: plain relay, relay + recording hand-off, relay with PCMU->PCMA
transcoding; plus the loop-side recording mix step per flush. CPU time per packet gives the calls one core can
relay (a bridged call is 100 packets/s) independently of how busy the shared machine is.

    python benchmarks/media_hotpath.py [--packets 200000]
Writes benchmarks/results/media_hotpath.json and .png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sip.media import g711  # noqa: E402
from sip.media.engine import MediaEngine  # noqa: E402
from sip.media.rtp import build_rtp  # noqa: E402
from sip.media.sdp import SdpNegotiator  # noqa: E402
from sip.settings import RtpSettings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class CountingTransport:
    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data, addr) -> None:
        self.sent += 1

    def close(self) -> None:
        pass


async def measure(packets: int, codec_b: str, record: bool, directory: Path) -> dict:
    engine = MediaEngine(RtpSettings(port_min=40000, port_max=49999, recording_flush_interval_s=1.0))
    a = await engine.allocate_leg("callee")
    b = await engine.allocate_leg("agent")
    a.answer(SdpNegotiator("127.0.0.1", 9000, ("PCMU",)).make_offer().serialize())
    b.answer(SdpNegotiator("127.0.0.1", 9002, (codec_b,)).make_offer().serialize())
    b._transport.close()
    b._transport = CountingTransport()
    bridge = engine.bridge(a, b, directory / f"{codec_b}.wav" if record else None)
    payload = g711.encode((np.sin(np.arange(160) * 0.3) * 9000).astype(np.int16), "PCMU")
    datagrams = [build_rtp(0, i & 0xFFFF, i * 160, 0xABCD, payload) for i in range(packets)]
    source = ("127.0.0.1", 9000)
    receive = a.datagram_received
    receive(datagrams[0], source)
    began = time.process_time()
    for datagram in datagrams[1:]:
        receive(datagram, source)
    cpu = time.process_time() - began
    assert b._transport.sent == packets, "relay dropped packets"
    engine.unbridge(bridge)
    await bridge.wait_closed()
    b._transport = None
    await engine.close()
    per_packet_us = cpu / (packets - 1) * 1e6
    return {"per_packet_us": per_packet_us,
            "packets": packets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    import uvloop

    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, codec, record in (("relay", "PCMU", False), ("relay+recording", "PCMU", True),
                                    ("relay+transcode", "PCMA", False), ("relay+transcode+recording", "PCMA", True)):
            results[name] = uvloop.run(measure(args.packets, codec, record, Path(directory)))
            r = results[name]
            print(f"{name:28s} {r['per_packet_us']:.2f} us/packet of Python work (socket system calls excluded: "
                  f"see media_relay.py for the whole cost)")
    # the loop-side mix for one 0.5 s flush of one call: 2 channels x 25 packets
    results["recording_mix_ms_per_flush"] = mix_per_flush()
    print(f"recording mix per 0.5 s flush of one call: {results['recording_mix_ms_per_flush']:.3f} ms on the loop")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "media_hotpath.json").write_text(json.dumps(results, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results if isinstance(results[n], dict)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, [results[n]["per_packet_us"] for n in names])
    ax.set_xlabel("CPU microseconds per relayed packet (shared 2-core machine)")
    fig.tight_layout()
    fig.savefig(RESULTS / "media_hotpath.png", dpi=100)
    print(f"wrote {RESULTS / 'media_hotpath.json'} and .png")


def mix_per_flush(rounds: int = 400) -> float:
    """Loop time of one 0.5 s flush of one call: 25 packets per channel fed, then decoded and handed over."""
    from sip.media.recording import CallRecording, RecordingWriter

    async def run() -> float:
        writer = RecordingWriter()
        with tempfile.TemporaryDirectory() as directory:
            recording = CallRecording(Path(directory) / "mix.wav", writer, flush_interval_s=3600)
            packet = build_rtp(0, 0, 0, 1, bytes(range(160)))
            spent = 0.0
            for r in range(rounds):
                for i in range(25):
                    for channel in (0, 1):
                        recording.feed(channel, packet, 12, "PCMU", (r * 25 + i) * 160, 5 + channel, 0.0)
                began = time.perf_counter()
                recording._write(4000)
                spent += time.perf_counter() - began
            await recording.close()
            await writer.shutdown()
            return spent / rounds * 1000

    import uvloop

    return uvloop.run(run())


if __name__ == "__main__":
    main()
