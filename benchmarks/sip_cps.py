"""Calls per second the Switch sustains as caller against a SIPp callee (INVITE, 200 with SDP, ACK, BYE, 200),
each call with its RTP port pair allocated and SDP offer/answer done. Zero failed calls is the pass line.

    python benchmarks/sip_cps.py --rate 300 --duration 60
    python benchmarks/sip_cps.py --sweep 100,200,300,400 --duration 15

Prints the figures, writes benchmarks/results/sip_cps.json and sip_cps.png. Open loop: calls are launched on a
fixed schedule whatever the switch's backlog, so falling behind shows as setup latency and failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._sipp import RESULTS, new_figure, save_figure, start_sipp, write_json  # noqa: E402
from sip.settings import RtpSettings, SipSettings, TrunkSettings  # noqa: E402
from sip.switch import Answered, Ended, Failed, Switch  # noqa: E402

SCENARIO = ROOT / "tests" / "sip" / "scenarios" / "uas_cps.xml"


async def run_rate(rate: float, duration_s: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sip_cps_"))
    sipp = await start_sipp(SCENARIO, workdir, duration_s)
    port = sipp.port
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=2.0)
    rtp = RtpSettings(port_min=53000, port_max=59999)
    trunk = TrunkSettings(name="load", host="127.0.0.1", port=port, max_cps=rate * 2, max_channels=100000,
                          options_enabled=False)
    switch = await Switch.start(sip, rtp, [trunk], [])
    loop = asyncio.get_running_loop()
    setup_s: list[float] = []
    failures: dict[str, int] = {}
    completed_at: list[float] = []
    lag_s: list[float] = []

    async def one_call(index: int) -> None:
        started = time.perf_counter()
        try:
            call = await switch.originate("load", f"+1555{index:07d}", "+15550000000", {}, ring_timeout_s=10)
        except Exception as error:  # noqa: BLE001 - a benchmark counts every way a call can fail
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
            return
        async for event in call.events():
            if isinstance(event, Answered):
                setup_s.append(time.perf_counter() - started)
                await switch.hangup(call)
            elif isinstance(event, Failed):
                failures[f"{event.sip_code}"] = failures.get(f"{event.sip_code}", 0) + 1
            elif isinstance(event, Ended):
                completed_at.append(time.perf_counter() - begin)

    tasks = []
    begin = time.perf_counter()
    total = int(rate * duration_s)
    cpu_before = time.process_time()
    for index in range(total):
        due = begin + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag_s.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.ensure_future(one_call(index)))
    launched_s = time.perf_counter() - begin
    await asyncio.wait(tasks, timeout=30)
    elapsed_s = time.perf_counter() - begin
    cpu_s = time.process_time() - cpu_before
    await switch.stop()
    sipp_cpu_s = sipp.cpu_seconds()
    await sipp.stop()
    setup_sorted = sorted(setup_s)

    def pct(p: float) -> float:
        return setup_sorted[min(len(setup_sorted) - 1, int(p * len(setup_sorted)))] * 1000 if setup_sorted else float("nan")

    per_second = [0] * (int(elapsed_s) + 1)
    for t in completed_at:
        per_second[min(int(t), len(per_second) - 1)] += 1
    return {
        "target_cps": rate, "duration_s": duration_s, "calls_launched": total, "calls_completed": len(completed_at),
        "calls_failed": sum(failures.values()), "failures": failures, "launch_window_s": round(launched_s, 3),
        "achieved_cps": round(len(completed_at) / launched_s, 1), "setup_ms_p50": round(pct(0.5), 2),
        "setup_ms_p99": round(pct(0.99), 2), "setup_ms_max": round(setup_sorted[-1] * 1000, 2) if setup_sorted else None,
        "schedule_lag_ms_p99": round(sorted(lag_s)[int(0.99 * len(lag_s))] * 1000, 2) if lag_s else None,
        "process_cpu_s": round(cpu_s, 2), "sipp_cpu_s": sipp_cpu_s, "load_average_1m": os.getloadavg()[0], "cpu_per_call_ms": round(cpu_s / max(1, len(completed_at)) * 1000, 3),
        "completed_per_second": per_second,
    }


def plot(results: list[dict], path: Path) -> None:
    fig, (left, right) = new_figure(2)
    for result in results:
        left.plot(result["completed_per_second"], label=f"target {result['target_cps']:g}/s")
    left.set_xlabel("time, s")
    left.set_ylabel("calls completed per second")
    left.legend()
    rates = [r["target_cps"] for r in results]
    right.plot(rates, [r["setup_ms_p50"] for r in results], "o-", label="p50")
    right.plot(rates, [r["setup_ms_p99"] for r in results], "o-", label="p99")
    for r in results:
        if r["calls_failed"]:
            right.annotate(f"{r['calls_failed']} failed", (r["target_cps"], r["setup_ms_p99"]))
    right.set_xlabel("target calls per second")
    right.set_ylabel("INVITE to 200 OK, ms")
    right.legend()
    fig.suptitle("Switch as caller vs SIPp UAS (loopback, RTP ports + SDP per call)")
    save_figure(fig, path.stem)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="target calls per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of launching per rate")
    parser.add_argument("--sweep", type=str, default="", help="comma-separated rates, run one after another")
    args = parser.parse_args()
    rates = [float(r) for r in args.sweep.split(",") if r] or [args.rate]
    results = []
    for rate in rates:
        result = await run_rate(rate, args.duration)
        results.append(result)
        shown = {k: v for k, v in result.items() if k != "completed_per_second"}
        print(json.dumps(shown))
    write_json("sip_cps", {"runs": results})
    plot(results, RESULTS / "sip_cps.png")
    print(f"wrote {RESULTS / 'sip_cps.json'} and sip_cps.png")


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
