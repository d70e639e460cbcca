"""How fast `dialer simulate` runs the real engine core: wall time of simulated 8-hour shifts.

Prints a table, writes benchmarks/results/simulate_speed.json and simulate_speed.png.
Usage: python benchmarks/simulate_speed.py [--agents 5 20 100] [--modes progressive predictive] [--hours 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dialer.simulate import Simulation
from pacing.settings import PacingSettings
from pacing.simulator import Scenario

RESULTS = Path(__file__).resolve().parent / "results"


def measure(agents: int, mode: str, hours: float, seed: int) -> dict:
    simulation = Simulation(Scenario(agents=agents, hours=hours), PacingSettings(mode=mode), seed=seed)
    started = time.perf_counter()
    report = simulation.run()
    wall_s = time.perf_counter() - started
    tally = simulation.tally()
    events = report.dials + report.answers + tally.bridges  # world events and core decisions, roughly
    return {
        "agents": agents, "mode": mode, "hours": hours, "seed": seed, "wall_s": round(wall_s, 3),
        "speedup": round(hours * 3600 / wall_s), "dials": report.dials, "answers": report.answers,
        "abandon_rate": round(report.abandon_rate, 4), "talk_utilization": round(report.talk_utilization, 4),
        "calls_per_wall_s": round(events / wall_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--modes", nargs="+", default=["progressive", "predictive"])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = [measure(a, m, args.hours, args.seed) for m in args.modes for a in args.agents]
    print(f"{'mode':12} {'agents':>6} {'wall s':>7} {'x real':>7} {'dials':>7} {'abandon':>8} {'talk util':>9}")
    for r in rows:
        print(f"{r['mode']:12} {r['agents']:6d} {r['wall_s']:7.2f} {r['speedup']:7d} {r['dials']:7d}"
              f" {r['abandon_rate']:8.2%} {r['talk_utilization']:9.1%}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "simulate_speed.json").write_text(json.dumps(rows, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in args.modes:
        points = [r for r in rows if r["mode"] == mode]
        ax.plot([r["agents"] for r in points], [r["wall_s"] for r in points], marker="o", label=mode)
    ax.set_xlabel("agents")
    ax.set_ylabel(f"wall seconds per {args.hours:g} h shift")
    ax.set_title("dialer simulate: engine core on a virtual clock")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "simulate_speed.png")
    print(f"wrote {RESULTS / 'simulate_speed.json'} and simulate_speed.png")


if __name__ == "__main__":
    main()
