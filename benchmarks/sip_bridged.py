"""Concurrent bridged calls through the Switch, G.711 RTP both ways, every call recorded; driven by SIPp.

Two SIPp UAS processes stand in for the carrier's callees and the agents' phones (benchmarks/scenarios/
uas_rtp_stream.xml): each answers at once and streams PCMU (50 packets/s) for the whole call. The switch originates
N calls on a trunk to the "callee" SIPp and calls N agent URIs on the "agent" SIPp, bridges each pair with
recording on, holds them for S seconds, then hangs everything up.

Figures over the held window (after set-up, with gc.freeze() done as a started switch does):
- bridged calls held (both legs answered and relaying in every second of the window);
- relay loss: packets SIPp sent (RFC 3550 sequence accounting on our legs: received + lost) minus packets relayed;
- relay-added delay p50/p99: the engine's per-leg histogram (receive to sendto returned, in-process), and with
  --wall-sample K a wall-clock measure independent of the engine: a packet socket on the loopback device takes
  kernel timestamps of K calls' packets as SIPp sends them to us and as we send them on, matched by payload;
- CPU of this process (and of each SIPp), event-loop lag, GC runs, recordings written; with --stall-probe, where
  the threads were whenever the loop ran 30 ms late.

    python benchmarks/sip_bridged.py --calls 300 --seconds 60
    python benchmarks/sip_bridged.py --calls 100,200,300 --seconds 20      # sweep
Writes benchmarks/results/sip_bridged.json and .png. Goal: >= 300 calls, loss < 0.1 %, relay-added p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import multiprocessing
import os
import socket
import struct
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sipp import (  # noqa: E402
    GcPauses, LoopStallProbe, SippUas, answered, histogram_quantile_ms, involuntary_switches, new_figure,
    own_cpu_seconds, percentiles_ms, runqueue_wait_seconds, save_figure, start_switch, streaming_peers, write_json,
)
from benchmarks.media_relay import _loop_lag  # noqa: E402
from sip.switch import Call, Switch  # noqa: E402

NAME = "sip_bridged"
_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_SO_TIMESTAMPNS = 35  # Linux; the socket module does not export it
_UDP_PAYLOAD = 14 + 20 + 8  # Ethernet (the loopback device has a zeroed one), IPv4 without options, UDP


def _port_range_filter(low: int, high: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: IPv4 UDP frames the host sends (as the sender's sendto hands them to the device), from or to
    a port in [low, high]. Everything else stays in the kernel."""
    return [
        (0x28, 0, 0, 12), (0x15, 0, 11, 0x0800),  # ethertype IPv4
        (0x30, 0, 0, 23), (0x15, 0, 9, 17),  # UDP
        (0x20, 0, 0, 0xFFFFF004), (0x15, 0, 7, _PACKET_OUTGOING),  # SKF_AD_PKTTYPE: the transmit tap
        (0x28, 0, 0, 34), (0x35, 0, 1, low), (0x25, 0, 3, high),  # source port in range: accept
        (0x28, 0, 0, 36), (0x35, 0, 2, low), (0x25, 1, 0, high),  # destination port in range: accept
        (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0),
    ]


def _capture(conn, pairs: list[tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    """Child process: kernel timestamps of SIPp -> leg and leg -> SIPp packets of the sampled calls; the delay of
    each relayed packet is out - in, matched by (receiving leg, payload)."""
    partner = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    ports = set(partner)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    program = _port_range_filter(min(ports), max(ports))
    buffer = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(buffer)))
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("lo", 0))
    sock.settimeout(0.2)
    arrivals: dict[tuple[int, bytes], float] = {}
    delays: list[float] = []
    unmatched = 0
    conn.send("ready")
    while not conn.poll():
        try:
            frame, ancillary, _, _ = sock.recvmsg(2048, 64)
        except socket.timeout:
            continue
        if not ancillary:
            continue
        seconds, nanoseconds = struct.unpack("qq", ancillary[0][2][:16])
        stamp = seconds + nanoseconds * 1e-9
        source, destination = struct.unpack_from("!HH", frame, 34)
        payload = frame[_UDP_PAYLOAD + 12:]
        if destination in ports:  # SIPp -> our leg
            arrivals[(destination, payload)] = stamp
        elif source in ports:  # our leg -> SIPp: relayed from its partner leg
            arrived = arrivals.pop((partner[source], payload), None)
            if arrived is None:
                unmatched += 1
            else:
                delays.append(stamp - arrived)
    drops = struct.unpack("II", sock.getsockopt(263, 6, 8))[1]  # SOL_PACKET, PACKET_STATISTICS: (packets, drops)
    conn.send({"delays_s": delays, "unmatched": unmatched, "drops": drops, "pairs": pairs})


class WallDelaySampler:
    """Relay-added wall delay of a few calls, measured outside the engine: from the kernel's timestamp of SIPp's
    packet to the kernel's timestamp of our relayed copy, in a capture process of its own (needs root)."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        self.pairs = pairs
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_capture, args=(child, pairs),
                                                                     daemon=True)

    async def start(self) -> None:
        self._process.start()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._conn.poll, 20):
            raise RuntimeError("wall-delay capture process did not start")
        self._conn.recv()

    async def stop(self) -> dict:
        self._conn.send("stop")
        result = await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)
        self._process.join(timeout=5)
        return result


def _leg_totals(calls: list[tuple[Call, Call]]) -> dict:
    legs = [leg for pair in calls for leg in (pair[0].leg, pair[1].leg)]
    counts = [0] * (len(legs[0].stats.relay_delay_counts) if legs else 0)
    for leg in legs:
        for index, count in enumerate(leg.stats.relay_delay_counts):
            counts[index] += count
    return {"in": sum(leg.stats.packets_in for leg in legs), "lost": sum(leg.stats.lost for leg in legs),
            "relayed": sum(leg.stats.packets_relayed for leg in legs),
            "ignored": sum(leg.stats.packets_ignored for leg in legs), "delay_counts": counts}


async def run(calls: int, seconds: float, setup_rate: float = 50.0, record: bool = True, wall_sample: int = 0,
              workdir: Path | None = None, stall_probe: bool = False) -> dict:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sip_bridged_"))
    recordings = workdir / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    budget_s = seconds + calls / setup_rate + 30
    if wall_sample and os.geteuid() != 0:
        raise SystemExit("--wall-sample needs root (a packet socket on the loopback device); use --wall-sample 0")
    async with streaming_peers(workdir, budget_s, ("-rtp_buffsize", str(1 << 20))) as (callee_sipp, agent_sipp):
        switch = await start_switch(callee_sipp.port, setup_rate, calls + 10, 30000, 8 * calls + 200, seconds + 60)
        return await _run(switch, calls, seconds, setup_rate, record, wall_sample, stall_probe, recordings,
                          callee_sipp, agent_sipp)


async def _run(switch: Switch, calls: int, seconds: float, setup_rate: float, record: bool, wall_sample: int,
               stall_probe_on: bool, recordings: Path, callee_sipp: SippUas, agent_sipp: SippUas) -> dict:
    pairs: list[tuple[Call, Call]] = []
    failures: dict[str, int] = {}
    setup_started = time.perf_counter()

    async def set_up(index: int) -> None:
        try:
            callee = await switch.originate("load", f"+1555{index:07d}", "+15550000000", {}, ring_timeout_s=15)
            agent = await switch.call_agent(f"sip:agent{index}@{agent_sipp.address}", ring_timeout_s=15)
            callee_ok, agent_ok = await asyncio.gather(answered(callee), answered(agent))
            if not (callee_ok and agent_ok):
                failures["not answered"] = failures.get("not answered", 0) + 1
                for call in (callee, agent):
                    await switch.hangup(call)
                return
            await switch.bridge(callee, agent, recordings / f"call-{index}.wav" if record else None)
            pairs.append((callee, agent))
        except Exception as error:  # noqa: BLE001 - a benchmark counts every way a call can fail
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1

    tasks = []
    for index in range(calls):
        tasks.append(asyncio.ensure_future(set_up(index)))
        await asyncio.sleep(1 / setup_rate)
    await asyncio.gather(*tasks)
    setup_s = time.perf_counter() - setup_started
    await asyncio.sleep(1.0)  # every stream running and latched before the window opens
    gc.collect()
    gc.freeze()  # what a started switch does: its long-lived objects leave the collector's scans

    sampler = None
    if wall_sample and pairs:
        sampled = pairs[:wall_sample]
        sampler = WallDelaySampler([(c.leg.port, a.leg.port) for c, a in sampled])
        await sampler.start()
    before = _leg_totals(pairs)
    sipp_cpu_before = [s.cpu_seconds() or 0.0 for s in (callee_sipp, agent_sipp)]
    cpu_before, wall_before = own_cpu_seconds(), time.perf_counter()
    waited_before, preempted_before = runqueue_wait_seconds(), involuntary_switches()
    lag: list[float] = []
    stop_lag = asyncio.Event()
    held_per_second: list[int] = []
    stall_probe = LoopStallProbe() if stall_probe_on else None
    if stall_probe is not None:
        stall_probe.start()
    with GcPauses() as gc_pauses:
        lag_task = asyncio.create_task(_loop_lag(lag, stop_lag))
        relayed_seen = {id(pair): pair[0].leg.stats.packets_relayed for pair in pairs}
        for _ in range(max(1, round(seconds))):
            await asyncio.sleep(seconds / max(1, round(seconds)))
            held = 0
            for pair in pairs:
                relayed = pair[0].leg.stats.packets_relayed
                if pair[0].state == pair[1].state == "answered" and relayed > relayed_seen[id(pair)]:
                    held += 1
                relayed_seen[id(pair)] = relayed
            held_per_second.append(held)
        stop_lag.set()
        await lag_task
    stalls = stall_probe.stop() if stall_probe is not None else {"loop_stall_samples": None}
    flush_max_s = max((c.leg.bridge.recording.flush_seconds_max for c, _ in pairs
                       if c.leg.bridge is not None and c.leg.bridge.recording is not None), default=0.0)
    wall_s = time.perf_counter() - wall_before
    cpu_s = own_cpu_seconds() - cpu_before
    waited_s, preempted = runqueue_wait_seconds() - waited_before, involuntary_switches() - preempted_before
    sipp_cpu = [round(((s.cpu_seconds() or 0.0) - b) / wall_s, 3)
                for s, b in zip((callee_sipp, agent_sipp), sipp_cpu_before)]
    after = _leg_totals(pairs)
    wall_delays = await sampler.stop() if sampler is not None else None
    load_average = os.getloadavg()

    for callee, agent in pairs:
        await switch.hangup(callee)
        await switch.hangup(agent)
    await asyncio.wait([c.done for pair in pairs for c in pair], timeout=10)
    ended_cleanly = sum(c.state == "ended" for pair in pairs for c in pair)
    await switch.stop()  # finishes the recordings
    await asyncio.sleep(0.5)
    sipp_stats = [s.last_stats() for s in (callee_sipp, agent_sipp)]

    received = after["in"] - before["in"]
    lost = after["lost"] - before["lost"]
    relayed = after["relayed"] - before["relayed"]
    sent_by_sipp = received + lost
    counts = [a - b for a, b in zip(after["delay_counts"], before["delay_counts"])]
    bounds = switch.rtp.relay_delay_buckets_s
    recording_seconds = []
    for path in sorted(recordings.glob("*.wav")):
        with wave.open(str(path)) as wav:
            recording_seconds.append(wav.getnframes() / wav.getframerate())
    return {
        "calls": calls, "seconds": seconds, "setup_rate": setup_rate, "recording": record,
        "calls_bridged": len(pairs), "calls_failed": sum(failures.values()), "failures": failures,
        "setup_s": round(setup_s, 2), "bridged_held_min": min(held_per_second, default=0),
        "bridged_held_per_second": held_per_second,
        "packets_sent_by_sipp": sent_by_sipp, "packets_received": received, "packets_lost_before_us": lost,
        "packets_relayed": relayed, "packets_ignored": after["ignored"] - before["ignored"],
        "relay_loss_rate": (sent_by_sipp - relayed) / sent_by_sipp if sent_by_sipp else float("nan"),
        "relay_processing_ms": {"p50_le": histogram_quantile_ms(bounds, counts, 0.5),
                                "p99_le": histogram_quantile_ms(bounds, counts, 0.99),
                                "p999_le": histogram_quantile_ms(bounds, counts, 0.999)},
        "relay_processing_histogram": {"bounds_s": list(bounds), "counts": counts},
        "relay_wall_delay_ms": (percentiles_ms(wall_delays["delays_s"], (50, 99, 99.9, 100)) | {
            "sampled_calls": len(wall_delays["pairs"]), "samples": len(wall_delays["delays_s"]),
            "unmatched": wall_delays["unmatched"], "capture_drops": wall_delays["drops"]}
            if wall_delays is not None else None),
        "loop_lag_ms": percentiles_ms(lag, (50, 99, 100)),
        "process_cpu_fraction": round(cpu_s / wall_s, 3),
        "process_cpu_us_per_relayed_packet": round(cpu_s / max(1, relayed) * 1e6, 2),
        "process_runqueue_wait_fraction": round(waited_s / wall_s, 3), "process_preemptions": preempted,
        "sipp_cpu_fraction": {"callee": sipp_cpu[0], "agent": sipp_cpu[1]},
        **gc_pauses.summary(), **stalls,
        "recording_flush_on_loop_max_ms": round(flush_max_s * 1000, 3),
        "recordings_written": len(recording_seconds),
        "recording_seconds_min": round(min(recording_seconds, default=0.0), 2),
        "recorded_mb": round(sum(p.stat().st_size for p in recordings.glob("*.wav")) / 1e6, 2),
        "calls_ended_cleanly": ended_cleanly,
        "sipp_successful_calls": [s.get("SuccessfulCall(C)") for s in sipp_stats],
        "sipp_failed_calls": [s.get("FailedCall(C)") for s in sipp_stats],
        "recordings_dir": str(recordings),
        "load_average": load_average,
        "_wall_delays_s": wall_delays["delays_s"] if wall_delays is not None else [],
    }


def report(result: dict) -> None:
    wall = result["relay_wall_delay_ms"] or {}
    rows = [
        ("calls asked / bridged / failed", f"{result['calls']} / {result['calls_bridged']} / {result['calls_failed']}"),
        ("bridged calls held (min over window)", result["bridged_held_min"]),
        ("window", f"{result['seconds']} s"),
        ("packets sent by SIPp / relayed", f"{result['packets_sent_by_sipp']} / {result['packets_relayed']}"),
        ("relay loss", f"{result['relay_loss_rate'] * 100:.4f} %"),
        ("relay processing p50 / p99 / p99.9 (<=)",
         "{p50_le:g} / {p99_le:g} / {p999_le:g} ms".format(**result["relay_processing_ms"])),
        ("relay wall delay p50 / p99 / max", f"{wall.get('p50', float('nan')):.3f} / {wall.get('p99', float('nan')):.3f}"
                                             f" / {wall.get('max', float('nan')):.3f} ms ({wall.get('samples', 0)} samples)"),
        ("event-loop lag p99 / max", "{p99:.2f} / {max:.2f} ms".format(**result["loop_lag_ms"])),
        ("CPU of this process", f"{result['process_cpu_fraction'] * 100:.1f} % of a core, "
                                f"{result['process_cpu_us_per_relayed_packet']} us per relayed packet"),
        ("waiting for a CPU (runqueue) / preempted", f"{result['process_runqueue_wait_fraction'] * 100:.1f} % of the "
                                                     f"window / {result['process_preemptions']} times"),
        ("CPU of SIPp callee / agent", f"{result['sipp_cpu_fraction']['callee'] * 100:.1f} % / "
                                       f"{result['sipp_cpu_fraction']['agent'] * 100:.1f} %"),
        ("loop stalls > 30 ms sampled / recording flush max", f"{result['loop_stall_samples']} / "
                                                             f"{result['recording_flush_on_loop_max_ms']} ms"),
        ("GC runs in window / max pause", f"{result['gc_collections']} / {result['gc_pause_max_ms']:.2f} ms"),
        ("recordings written / shortest", f"{result['recordings_written']} / {result['recording_seconds_min']} s"),
        ("load average (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in result["load_average"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def plot(results: list[dict]) -> Path:
    figure, (left, right) = new_figure(2)
    for result in results:
        counts = result["relay_processing_histogram"]["counts"]
        total = max(1, sum(counts))
        labels = [f"{b * 1000:g}" for b in result["relay_processing_histogram"]["bounds_s"]] + ["more"]
        left.plot(labels, [c / total for c in counts], "o-", label=f"{result['calls']} calls, in-process")
        delays = sorted(result["_wall_delays_s"])
        if delays:
            right.plot([d * 1000 for d in delays], [i / len(delays) for i in range(len(delays))],
                       label=f"{result['calls']} calls")
    left.set_xlabel("relay processing, <= ms")
    left.set_ylabel("share of relayed packets")
    left.legend()
    right.set_xlabel("relay wall delay (kernel timestamps in -> out), ms")
    right.set_ylabel("cumulative share")
    right.set_xscale("log")
    right.legend()
    figure.suptitle("Switch bridging SIPp callees to SIPp agents, PCMU both ways, recording on (loopback)")
    return save_figure(figure, NAME)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=str, default="300", help="bridged calls; comma-separated for a sweep")
    parser.add_argument("--seconds", type=float, default=60.0, help="held window per run, seconds")
    parser.add_argument("--setup-rate", type=float, default=50.0, help="call pairs set up per second")
    parser.add_argument("--no-recording", action="store_true", help="bridge without recording")
    parser.add_argument("--wall-sample", type=int, default=10,
                        help="calls whose wall delay is measured with a loopback packet socket (root); 0: off")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where recordings and SIPp files go (default: a new directory under $TMPDIR)")
    parser.add_argument("--stall-probe", action="store_true",
                        help="sample every thread's stack whenever the loop is 30 ms late (where do stalls come from)")
    args = parser.parse_args()
    results = []
    for calls in [int(c) for c in args.calls.split(",") if c]:
        workdir = Path(tempfile.mkdtemp(prefix=f"{NAME}_", dir=args.workdir)) if args.workdir else None
        result = await run(calls, args.seconds, args.setup_rate, not args.no_recording, args.wall_sample, workdir,
                           args.stall_probe)
        results.append(result)
        report(result)
        print()
    write_json(NAME, {"runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]})
    print(f"wrote {plot(results)} and {NAME}.json")
    print(json.dumps({k: v for k, v in results[-1].items() if not k.startswith("_") and k != "bridged_held_per_second"}))


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
