"""Answer-to-bridge delay: from the callee's 200 OK received to the first RTP packet relayed towards the agent.

Agents are up first (the switch calls A agent URIs on a SIPp UAS that streams PCMU, and keeps the legs). Then calls
are placed on a trunk to a SIPp callee at a fixed rate (open loop); the callee answers at once and sends PCMU
every 20 ms from its 200 OK on: --callee pcap (default, scenarios/uas_pcap_callee.xml: play_pcap_audio, whose
first packet leaves with the 200 OK) or --callee stream (scenarios/uas_rtp_stream.xml: SIPp's rtp_stream threads,
whose first packet leaves 20-40 ms after the 200 OK). On Answered, the benchmark does what the engine
does: takes a free agent, bridges (recording on), holds the call a while, unbridges, hangs the callee up and frees
the agent.

The delay is measured in our process on one clock (time.perf_counter): start = when the Switch emits Answered, in
the same callback that parsed the 200 OK; end = arrival of the first callee packet the media engine relayed
towards the agent (LegStats.first_relayed_at). It splits into answer -> bridge() (our signalling and scheduling)
and bridge() -> first relayed packet (mostly waiting for the callee's next 20 ms packet).

    python benchmarks/sip_answer_to_bridge.py --calls 500 --rate 20
Writes benchmarks/results/sip_answer_to_bridge.json and .png. Goal: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sipp import (  # noqa: E402
    GcPauses, SippUas, answered, new_figure, own_cpu_seconds, percentiles_ms, save_figure, start_switch,
    streaming_peers, write_json,
)
from benchmarks.media_relay import _loop_lag  # noqa: E402
from sip.switch import Answered, Call, CallEvent, Failed, Switch  # noqa: E402

NAME = "sip_answer_to_bridge"
POINTS = (50, 95, 99, 100)


async def run(calls: int, rate: float, hold_s: float = 1.0, agents: int = 0, record: bool = True,
              workdir: Path | None = None, callee: str = "pcap") -> dict:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sip_a2b_"))
    agents = agents or math.ceil(rate * (hold_s + 0.5) * 1.5) + 2
    budget_s = calls / rate + hold_s + 60
    callee_scenario = {"stream": "uas_rtp_stream.xml", "pcap": "uas_pcap_callee.xml"}[callee]
    async with streaming_peers(workdir, budget_s, callee_scenario=callee_scenario) as (callee_sipp, agent_sipp):
        switch = await start_switch(callee_sipp.port, rate * 2, calls + 10, 40000,
                                    8 * (agents + int(rate * (hold_s + 2)) + 50), calls / rate + 60)
        result = await _run(switch, calls, rate, hold_s, agents, record, workdir, callee_sipp, agent_sipp)
        return {"callee_rtp": callee, **result}


async def _run(switch: Switch, calls: int, rate: float, hold_s: float, agents: int, record: bool, workdir: Path,
               callee_sipp: SippUas, agent_sipp: SippUas) -> dict:
    agent_calls = [await switch.call_agent(f"sip:agent{i}@{agent_sipp.address}", ring_timeout_s=10)
                   for i in range(agents)]
    if not all(await asyncio.gather(*(answered(a) for a in agent_calls))):
        raise RuntimeError(f"not every agent answered: {agent_sipp.errors()}")
    free_agents: deque[Call] = deque(agent_calls)
    await asyncio.sleep(0.5)  # agents' streams running
    gc.collect()
    gc.freeze()  # what a started switch does: its long-lived objects leave the collector's scans

    to_bridge_s: list[float] = []
    to_first_relayed_s: list[float] = []
    answer_to_bridge_s: list[float] = []
    streaming_at_bridge: list[bool] = []  # had the callee's first packet arrived when we bridged?
    relayed_from_first_packet: list[bool] = []  # every packet the callee sent was relayed, its first included
    lag: list[float] = []
    stop_lag = asyncio.Event()
    failures: dict[str, int] = {}

    def fail(reason: str) -> None:
        failures[reason] = failures.get(reason, 0) + 1

    async def one_call(index: int) -> None:
        answered_at = 0.0

        def on_event(event: CallEvent) -> None:
            nonlocal answered_at
            if isinstance(event, Answered):
                answered_at = time.perf_counter()

        try:
            callee = await switch.originate("load", f"+1555{index:07d}", "+15550000000", {}, ring_timeout_s=10)
        except Exception as error:  # noqa: BLE001 - a benchmark counts every way a call can fail
            fail(type(error).__name__)
            return
        callee.on_event = on_event
        async for event in callee.events():
            if isinstance(event, Failed):
                fail(f"{event.sip_code}")
                return
            if isinstance(event, Answered):
                break
        if not free_agents:
            fail("no free agent")
            await switch.hangup(callee)
            return
        agent = free_agents.popleft()
        bridge_at = time.perf_counter()
        streaming_at_bridge.append(callee.leg.stats.packets_in > 0)
        await switch.bridge(callee, agent, workdir / f"call-{index}.wav" if record else None)
        await asyncio.sleep(hold_s)
        stats = callee.leg.stats
        first = stats.first_relayed_at
        relayed_from_first_packet.append(stats.packets_in == stats.packets_relayed)
        await switch.unbridge(callee, agent)
        free_agents.append(agent)
        await switch.hangup(callee)
        if not first:
            if not stats.packets_in:
                fail("nothing relayed: no packet from the callee")
            elif stats.packets_in == stats.packets_ignored:
                fail("nothing relayed: the callee's packets were all ignored")
            else:
                fail("nothing relayed: callee packets arrived")
            return
        to_bridge_s.append(bridge_at - answered_at)
        to_first_relayed_s.append(first - bridge_at)
        answer_to_bridge_s.append(first - answered_at)

    tasks = []
    lag_max = 0.0
    cpu_before, begin = own_cpu_seconds(), time.perf_counter()
    with GcPauses() as gc_pauses:
        lag_task = asyncio.create_task(_loop_lag(lag, stop_lag))
        for index in range(calls):
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_max = max(lag_max, -delay)
            tasks.append(asyncio.ensure_future(one_call(index)))
        await asyncio.wait(tasks, timeout=hold_s + 30)
        stop_lag.set()
        await lag_task
    wall_s = time.perf_counter() - begin
    cpu_s = own_cpu_seconds() - cpu_before
    load_average = os.getloadavg()
    for agent in agent_calls:
        await switch.hangup(agent)
    await switch.stop()
    callee_stats = callee_sipp.last_stats()
    return {
        "calls": calls, "rate": rate, "hold_s": hold_s, "agents": agents, "recording": record,
        "calls_measured": len(answer_to_bridge_s), "calls_failed": sum(failures.values()), "failures": failures,
        "answer_to_first_relayed_ms": percentiles_ms(answer_to_bridge_s, POINTS),
        "answer_to_bridge_call_ms": percentiles_ms(to_bridge_s, POINTS),
        "bridge_to_first_relayed_ms": percentiles_ms(to_first_relayed_s, POINTS),
        "callee_streaming_at_bridge_share": round(sum(streaming_at_bridge) / max(1, len(streaming_at_bridge)), 3),
        "first_relayed_was_callee_first_packet_share": round(
            sum(relayed_from_first_packet) / max(1, len(relayed_from_first_packet)), 3),
        "loop_lag_ms": percentiles_ms(lag, (50, 99, 100)),
        "launch_lag_max_ms": round(lag_max * 1000, 2),
        "process_cpu_fraction": round(cpu_s / wall_s, 3), **gc_pauses.summary(),
        "sipp_callee_successful_calls": callee_stats.get("SuccessfulCall(C)"),
        "sipp_callee_failed_calls": callee_stats.get("FailedCall(C)"),
        "load_average": load_average,
        "_delays_s": answer_to_bridge_s,
    }


def report(result: dict) -> None:
    print(f"{result['calls']} calls at {result['rate']:g}/s (callee RTP: {result['callee_rtp']}), {result['agents']} "
          f"agents up, hold {result['hold_s']} s, "
          f"recording {'on' if result['recording'] else 'off'}: {result['calls_measured']} measured, "
          f"{result['calls_failed']} failed {result['failures'] or ''}")
    print(f"{'ms':<32}" + "".join(f"{name:>9}" for name in ("p50", "p95", "p99", "max")))
    for label, key in (("200 OK -> first relayed packet", "answer_to_first_relayed_ms"),
                       ("  200 OK -> bridge()", "answer_to_bridge_call_ms"),
                       ("  bridge() -> first relayed", "bridge_to_first_relayed_ms")):
        print(f"{label:<32}" + "".join(f"{result[key][name]:>9.2f}" for name in ("p50", "p95", "p99", "max")))
    print(f"callee's first RTP packet had arrived when bridge() ran in {result['callee_streaming_at_bridge_share'] * 100:.1f}"
          " % of calls; the first packet relayed was the callee's very first RTP packet in "
          f"{result['first_relayed_was_callee_first_packet_share'] * 100:.1f} % (otherwise that packet beat the 200 OK"
          " and was dropped as not yet negotiated, and the next one, 20 ms on, is the first relayed)")
    print("event-loop lag p50 / p99 / max: {p50:.2f} / {p99:.2f} / {max:.2f} ms".format(**result["loop_lag_ms"]))
    print(f"CPU of this process {result['process_cpu_fraction'] * 100:.1f} % of a core; GC runs "
          f"{result['gc_collections']} (max {result['gc_pause_max_ms']:.2f} ms); load average "
          + " ".join(f"{x:.2f}" for x in result["load_average"]))


def plot(result: dict) -> Path:
    figure, (left, right) = new_figure(2)
    delays = sorted(d * 1000 for d in result["_delays_s"])
    left.hist(delays, bins=50)
    left.axvline(50, color="red", linestyle="--", label="goal p99 50 ms")
    left.set_xlabel("200 OK received -> first RTP relayed to agent, ms")
    left.set_ylabel("calls")
    left.legend()
    if delays:
        right.plot(delays, [i / len(delays) for i in range(len(delays))])
    right.axhline(0.99, color="grey", linestyle=":")
    right.set_xlabel("ms")
    right.set_ylabel("cumulative share of calls")
    figure.suptitle(f"Answer-to-bridge, {result['calls']} calls at {result['rate']:g}/s (SIPp callee and agents)")
    return save_figure(figure, NAME)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500, help="calls placed")
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call stays bridged")
    parser.add_argument("--agents", type=int, default=0, help="agent legs kept up (default: enough for the rate)")
    parser.add_argument("--callee", choices=("pcap", "stream"), default="pcap",
                        help="how the SIPp callee sends RTP: play_pcap_audio (first packet at once) or rtp_stream "
                             "(SIPp's stream threads, which start 20-40 ms late)")
    parser.add_argument("--no-recording", action="store_true", help="bridge without recording")
    args = parser.parse_args()
    result = await run(args.calls, args.rate, args.hold, args.agents, not args.no_recording, callee=args.callee)
    report(result)
    write_json(NAME, {k: v for k, v in result.items() if not k.startswith("_")})
    print(f"wrote {plot(result)} and {NAME}.json")
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
