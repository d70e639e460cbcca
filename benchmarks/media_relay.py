"""Benchmark: concurrent bridged G.711 calls through the media engine, RTP both ways, recording on.

The relay (MediaEngine on uvloop) runs in this process; the load generator runs in separate processes
(multiprocessing), each with its own uvloop, playing both ends of its share of the calls: every call sends one
20 ms PCMU packet per direction per 20 ms, phases spread over the 20 ms so calls are not synchronised. Each payload
carries its send index, so the generator measures loss and end-to-end delay (generator -> relay -> generator,
an upper bound of the relay-added delay: it includes the generator's own scheduling and the kernel). The relay
reports its in-process processing time per packet and its event-loop lag (how late a 5 ms timer fires, which bounds
how long anything, recording writes included, stalled the loop).

    python benchmarks/media_relay.py --calls 300 --seconds 60
    python benchmarks/media_relay.py --calls 50,100,200,300 --seconds 10      # sweep
Writes benchmarks/results/media_relay.json and .png. Goal: >= 300 calls, loss < 0.1 %, relay-added p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import resource
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sip.media import g711  # noqa: E402
from sip.media.engine import MediaEngine  # noqa: E402
from sip.media.sdp import SdpNegotiator  # noqa: E402
from sip.settings import RtpSettings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PTIME_S = 0.020
SLOTS = 20  # the 20 ms period is cut into 1 ms slots; each call sends in its own slot
HEADER = struct.Struct("!BBHII")
INDEX = struct.Struct("!I")


# ---------------------------------------------------------------- load generator (child process)


class _End(asyncio.DatagramProtocol):
    """One end of one call: receives the other end's packets relayed, measures delay by send index."""

    def __init__(self, sent_times: list[float], first_counted: int, last_counted: int) -> None:
        self.sent_times = sent_times  # the OTHER end's send times, by index
        self.first_counted = first_counted
        self.last_counted = last_counted
        self.delays: list[float] = []
        self.received = 0
        self.per_second: dict[int, int] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.perf_counter()
        index = INDEX.unpack_from(data, 12)[0]
        if self.first_counted <= index < self.last_counted:
            self.received += 1
            self.delays.append(now - self.sent_times[index])


async def _generate(conn, calls: int, seconds: float, warmup_s: float) -> None:
    loop = asyncio.get_running_loop()
    total = int((warmup_s + seconds) / PTIME_S)
    first_counted = int(warmup_s / PTIME_S)
    sent_times = [[[0.0] * total for _ in range(2)] for _ in range(calls)]
    ends: list[tuple[_End, _End]] = []
    for call in range(calls):
        pair = []
        for direction in range(2):  # end 0 = callee receives what end 1 (agent) sent, and vice versa
            end = _End(sent_times[call][1 - direction], first_counted, total)
            await loop.create_datagram_endpoint(lambda end=end: end, local_addr=("127.0.0.1", 0))
            pair.append(end)
        ends.append((pair[0], pair[1]))
    conn.send([(a.transport.get_extra_info("sockname")[1], b.transport.get_extra_info("sockname")[1])
               for a, b in ends])
    leg_ports = await loop.run_in_executor(None, conn.recv)
    gc.freeze()  # the generator's bookkeeping must not pause it mid-run
    t = np.arange(160) / 8000
    tone = g711.encode((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), "PCMU")[INDEX.size:]
    slot_calls = [[c for c in range(calls) if c % SLOTS == s] for s in range(SLOTS)]
    ssrcs = [(0x10000 + c, 0x20000 + c) for c in range(calls)]
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_before = time.perf_counter()
    start = loop.time() + 0.05
    late_max = 0.0
    for tick in range(total * SLOTS):
        delay = start + tick * PTIME_S / SLOTS - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late_max = max(late_max, -delay)
        index, slot = divmod(tick, SLOTS)
        seq, ts = index & 0xFFFF, (index * 160) & 0xFFFFFFFF
        for call in slot_calls[slot]:
            for direction in range(2):
                packet = HEADER.pack(0x80, 0, seq, ts, ssrcs[call][direction]) + INDEX.pack(index) + tone
                sent_times[call][direction][index] = time.perf_counter()
                ends[call][direction].transport.sendto(packet, ("127.0.0.1", leg_ports[call][direction]))
    await asyncio.sleep(0.5)  # let the last packets arrive
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    delays = np.array([d for pair in ends for end in pair for d in end.delays], dtype=np.float64)
    conn.send({
        "sent": calls * 2 * (total - first_counted),
        "received": sum(end.received for pair in ends for end in pair),
        "delays": delays,
        "cpu_fraction": cpu / (time.perf_counter() - wall_before),
        "sender_late_max_s": late_max,
    })


def generator_main(conn, calls: int, seconds: float, warmup_s: float) -> None:
    import uvloop

    uvloop.run(_generate(conn, calls, seconds, warmup_s))


# ---------------------------------------------------------------- relay (this process)


async def _loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():  # perf_counter: uvloop's loop.time() has millisecond resolution
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(time.perf_counter() - before - 0.005)


class _BareForwarder(asyncio.DatagramProtocol):
    """--baseline: the least a Python relay can do (receive, send to the other end), to show the machine's floor."""

    def __init__(self, destination: tuple[str, int]) -> None:
        self.destination = destination
        self.transport: asyncio.DatagramTransport | None = None
        self.other: _BareForwarder | None = None
        self.received = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received += 1
        self.other.transport.sendto(data, self.other.destination)


async def _bare_pair(forwarders: list, callee_port: int, agent_port: int) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    pair = [_BareForwarder(("127.0.0.1", callee_port)), _BareForwarder(("127.0.0.1", agent_port))]
    for forwarder in pair:
        await loop.create_datagram_endpoint(lambda f=forwarder: f, local_addr=("127.0.0.1", 0))
    pair[0].other, pair[1].other = pair[1], pair[0]
    forwarders.extend(pair)
    return tuple(f.transport.get_extra_info("sockname")[1] for f in pair)  # type: ignore[return-value]


async def run_relay(calls: int, seconds: float, warmup_s: float, generators: int, record: bool,
                    recording_dir: Path, baseline: bool = False, freeze_gc: bool = False) -> dict:
    settings = RtpSettings(port_min=40000, port_max=49999, inactivity_timeout_s=3600, codecs=("PCMU",))
    engine = MediaEngine(settings)
    ctx = mp.get_context("spawn")
    shares = [calls // generators + (1 if i < calls % generators else 0) for i in range(generators)]
    children = []
    for share in shares:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=generator_main, args=(child, share, seconds, warmup_s), daemon=True)
        process.start()
        children.append((parent, process, share))
    loop = asyncio.get_running_loop()
    bridges = []
    forwarders: list[_BareForwarder] = []
    call_number = 0
    for parent, _, share in children:
        peer_ports = await loop.run_in_executor(None, parent.recv)
        leg_ports = []
        for callee_port, agent_port in peer_ports:
            if baseline:
                leg_ports.append(await _bare_pair(forwarders, callee_port, agent_port))
                continue
            legs = []
            for label, port in (("callee", callee_port), ("agent", agent_port)):
                leg = await engine.allocate_leg(f"{label}-{call_number}")
                leg.answer(SdpNegotiator("127.0.0.1", port, ("PCMU",)).make_offer().serialize())
                legs.append(leg)
            path = recording_dir / f"call-{call_number}.wav" if record else None
            bridges.append(engine.bridge(legs[0], legs[1], path))
            leg_ports.append((legs[0].port, legs[1].port))
            call_number += 1
        parent.send(leg_ports)
    gc_pauses: list[float] = []
    gc_started: list[float] = []

    def gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            gc_pauses.append(time.perf_counter() - gc_started.pop())

    gc.callbacks.append(gc_timer)
    if freeze_gc:
        gc.freeze()  # what a long-running switch does after start-up: long-lived objects leave the GC's scans
    lag: list[float] = []
    stop = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(lag, stop))
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_before = time.perf_counter()
    reports = [await loop.run_in_executor(None, parent.recv) for parent, _, _ in children]
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall_before
    stop.set()
    await lag_task
    gc.callbacks.remove(gc_timer)
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    flush_max = max((b.recording.flush_seconds_max for b in bridges if b.recording), default=0.0)
    late_samples = sum(b.recording.late_samples for b in bridges if b.recording)
    legs = [leg for b in bridges for leg in (b.a, b.b)]
    bounds = settings.relay_delay_buckets_s
    processing = np.sum([leg.stats.relay_delay_counts for leg in legs] or [[0] * (len(bounds) + 1)], axis=0)
    engine_lost = sum(leg.stats.lost for leg in legs)
    engine_in = sum(leg.stats.packets_in for leg in legs) + sum(f.received for f in forwarders)
    for forwarder in forwarders:
        forwarder.transport.close()
    for bridge in bridges:
        engine.unbridge(bridge)
    await asyncio.gather(*(b.wait_closed() for b in bridges))
    recorded_bytes = sum(p.stat().st_size for p in recording_dir.glob("*.wav"))
    await engine.close()
    for _, process, _ in children:
        process.join(timeout=5)
    delays = np.concatenate([r["delays"] for r in reports])
    sent = sum(r["sent"] for r in reports)
    received = sum(r["received"] for r in reports)
    lag_arr = np.array(lag or [float("nan")])
    if delays.size == 0:
        delays = np.array([float("nan")])
    cumulative = np.cumsum(processing) / max(1, processing.sum())
    processing_p99 = next((b for b, c in zip(bounds, cumulative) if c >= 0.99), float("inf"))
    return {
        "calls": calls, "seconds": seconds, "warmup_s": warmup_s, "generators": generators,
        "recording": record and not baseline, "relay": "bare forwarder (baseline)" if baseline else "MediaEngine",
        "packets_sent": sent, "packets_received": received, "loss_rate": 1 - received / sent,
        "e2e_delay_ms": {q: float(np.percentile(delays, p)) * 1000
                         for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100))},
        "relay_processing_p99_le_ms": processing_p99 * 1000,
        "relay_processing_histogram": {"bounds_s": list(bounds), "counts": processing.tolist()},
        "relay_loop_lag_ms": {"p50": float(np.percentile(lag_arr, 50)) * 1000,
                              "p99": float(np.percentile(lag_arr, 99)) * 1000, "max": float(lag_arr.max()) * 1000},
        "recording_flush_handoff_max_ms": flush_max * 1000,
        "recording_late_samples": late_samples,
        "recorded_mb": recorded_bytes / 1e6,
        "engine_packets_in": engine_in, "engine_packets_lost_rfc3550": engine_lost,
        "relay_cpu_fraction": cpu / wall,
        "relay_cpu_us_per_packet": cpu / max(1, engine_in) * 1e6,
        "generator_cpu_fraction": [r["cpu_fraction"] for r in reports],
        "generator_sender_late_max_ms": max(r["sender_late_max_s"] for r in reports) * 1000,
        "load_average_1m": os.getloadavg()[0],
        "gc_frozen": freeze_gc, "gc_collections": len(gc_pauses),
        "gc_pause_max_ms": max(gc_pauses, default=0.0) * 1000,
        "cpus": os.cpu_count(),
        "_delays": delays,
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    calls = [r["calls"] for r in results]
    middle.plot(calls, [r["e2e_delay_ms"]["p99"] for r in results], "o-", label="end-to-end p99")
    middle.plot(calls, [r["relay_loop_lag_ms"]["p99"] for r in results], "s--", label="relay loop lag p99")
    middle.axhline(5, color="black", linestyle=":", label="goal 5 ms")
    middle.set_yscale("log")
    middle.set_xlabel("concurrent bridged calls (recording on)" if results[0]["recording"] else "concurrent calls")
    middle.set_ylabel("ms")
    middle.legend()
    right.plot(calls, [max(r["loss_rate"], 1e-6) * 100 for r in results], "o-")
    right.axhline(0.1, color="black", linestyle=":", label="goal 0.1 %")
    right.set_yscale("log")
    right.set_xlabel("concurrent bridged calls")
    right.set_ylabel("relay loss % (1e-4 = none)")
    right.legend()
    last = results[-1]
    delays_ms = last["_delays"] * 1000
    if delays_ms.size:
        bins = np.logspace(np.log10(max(delays_ms.min(), 0.01)), np.log10(delays_ms.max() + 0.01), 60)
        left.hist(delays_ms, bins=bins)
        left.set_xscale("log")
        left.set_yscale("log")
        left.axvline(5, color="black", linestyle=":", label="goal 5 ms")
        left.legend()
    left.set_xlabel(f"end-to-end delay at {last['calls']} calls (ms)")
    left.set_ylabel("packets")
    fig.suptitle(f"media relay, {last['seconds']:g} s per point; shared 2-core machine, "
                 f"load average {last['load_average_1m']:.1f} at the end")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def report(result: dict) -> None:
    e2e = result["e2e_delay_ms"]
    print(f"{result['relay']}: {result['calls']} calls x {result['seconds']:g} s, "
          f"recording {'on' if result['recording'] else 'off'}, "
          f"{result['generators']} generator process(es), load average {result['load_average_1m']:.2f}")
    print(f"  packets sent {result['packets_sent']}, received {result['packets_received']}, "
          f"loss {result['loss_rate'] * 100:.4f} % (engine RFC 3550 lost: {result['engine_packets_lost_rfc3550']})")
    print(f"  end-to-end delay ms: p50 {e2e['p50']:.3f}  p90 {e2e['p90']:.3f}  p99 {e2e['p99']:.3f}  "
          f"p99.9 {e2e['p999']:.3f}  max {e2e['max']:.1f}")
    print(f"  relay processing p99 <= {result['relay_processing_p99_le_ms']:.3f} ms; relay loop lag ms "
          f"p50 {result['relay_loop_lag_ms']['p50']:.3f} p99 {result['relay_loop_lag_ms']['p99']:.3f} "
          f"max {result['relay_loop_lag_ms']['max']:.1f}")
    print(f"  recording: {result['recorded_mb']:.1f} MB written, flush hand-off max "
          f"{result['recording_flush_handoff_max_ms']:.3f} ms, late samples {result['recording_late_samples']}")
    print(f"  CPU: relay {result['relay_cpu_fraction']:.2f} core ({result['relay_cpu_us_per_packet']:.1f} us per "
          f"packet received), generators {', '.join(f'{c:.2f}' for c in result['generator_cpu_fraction'])} core; "
          f"generator sender late max {result['generator_sender_late_max_ms']:.1f} ms")
    print(f"  GC: {result['gc_collections']} collections, longest pause {result['gc_pause_max_ms']:.2f} ms "
          f"(frozen: {result['gc_frozen']})")
    verdict = result["loss_rate"] < 0.001 and e2e["p99"] < 5
    print(f"  goal (loss < 0.1 %, p99 < 5 ms): {'met' if verdict else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="300", help="concurrent calls, or a comma list to sweep (100,200,300)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent before measuring")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--no-record", action="store_true", help="bridge without recording")
    parser.add_argument("--baseline", action="store_true",
                        help="replace the MediaEngine by a bare Python datagram forwarder: the machine's floor")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="skip gc.freeze() after set-up (a production switch freezes once started)")
    parser.add_argument("--name", default="media_relay", help="results file stem")
    args = parser.parse_args()
    import uvloop

    results = []
    for calls in (int(c) for c in args.calls.split(",")):
        with tempfile.TemporaryDirectory(prefix="media_relay_") as directory:
            result = uvloop.run(run_relay(calls, args.seconds, args.warmup, args.generators, not args.no_record,
                                          Path(directory), args.baseline, not args.no_gc_freeze))
        report(result)
        results.append(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS / f"{args.name}.png")
    for result in results:
        result.pop("_delays")
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS / (args.name + '.json')} and .png")


if __name__ == "__main__":
    main()
