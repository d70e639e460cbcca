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
import platform
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sip.settings import RtpSettings, SipSettings, TrunkSettings  # noqa: E402
from sip.switch import Answered, Ended, Failed, Switch  # noqa: E402

SCENARIO = ROOT / "tests" / "sip" / "scenarios" / "uas_cps.xml"
RESULTS = ROOT / "benchmarks" / "results"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of another process (SIPp), from /proc: shows which side of the test saturates."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


async def start_sipp(workdir: Path, duration_s: float) -> tuple[asyncio.subprocess.Process, int]:
    binary = shutil.which("sipp")
    if binary is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()), "-nostdin",
        "-timeout", f"{int(duration_s + 30)}s", "-max_socket", "10000", "-buff_size", str(4 * 1024 * 1024), "-trace_stat", "-stf",
        str(workdir / "sipp.csv"), "-fd", "1", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=workdir)
    await asyncio.sleep(0.5)
    return process, port


async def run_rate(rate: float, duration_s: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sip_cps_"))
    sipp, port = await start_sipp(workdir, duration_s)
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
    sipp_cpu_s = process_cpu_seconds(sipp.pid)
    sipp.kill()
    await sipp.wait()
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)


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
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "note": "2-core machine shared with other work while measuring"}
    (RESULTS / "sip_cps.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=2))
    plot(results, RESULTS / "sip_cps.png")
    print(f"wrote {RESULTS / 'sip_cps.json'} and sip_cps.png")


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
