"""Pacing frontier: progressive vs a VICIdial-style ADAPT controller vs our predictive policy, same seeds.

Each shift runs the real engine core (dialer.simulate.run_simulation) against pacing.simulator.SimulatedWorld.
Prints a table (abandon rate pooled over seeds, mean talk utilisation ...), the cost of one predictive decide()
call, checks the goals of issue 5, and writes benchmarks/results/pacing_frontier.json and .png.

    python benchmarks/pacing_frontier.py                 # the full grid: 3 x 3 scenarios x 5 seeds x 8 h
    python benchmarks/pacing_frontier.py --hours 2 --seeds 2 --agents 20 --rates 0.3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialer.simulate import run_simulation  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from pacing import make_policy  # noqa: E402
from pacing.erlang import erlang_a  # noqa: E402
from pacing.settings import PacingSettings  # noqa: E402
from pacing.simulator import Scenario  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("progressive", "adapt", "predictive")
GOALS_AT_30 = {5: 0.77, 20: 0.88, 100: 0.93}
ABANDON_GOAL = 0.03


def scenario(agents: int, answer_rate: float, hours: float) -> Scenario:
    return Scenario(
        agents=agents, hours=hours, answer_rate=answer_rate, busy_rate=0.10, invalid_rate=0.05,
        ring_mean_s=12.0, ring_sd_s=6.0, no_answer_timeout_s=25.0, talk_mean_s=180.0, talk_sd_s=120.0,
        wrap_up_s=10.0, connect_limit_s=2.0,
    )


def run_one(job: tuple[str, int, float, int, float]) -> dict:
    mode, agents, rate, seed, hours = job
    started = time.perf_counter()
    report = run_simulation(scenario(agents, rate, hours), PacingSettings(mode=mode), seed=seed)
    return {
        "mode": mode, "agents": agents, "answer_rate": rate, "seed": seed, "hours": hours,
        "wall_s": time.perf_counter() - started, "dials": report.dials, "answers": report.answers,
        "abandons": report.abandons, "abandon_rate": report.abandon_rate,
        "talk_utilization": report.talk_utilization, "occupancy": report.occupancy,
        "talk_minutes_per_agent_hour": report.talk_minutes_per_agent_hour,
        "mean_agent_wait_s": report.mean_agent_wait_s,
    }


def pool_runs(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["agents"], run["answer_rate"], run["mode"]), []).append(run)
    rows = []
    for (agents, rate, mode), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], MODES.index(kv[0][2]))):
        answers = sum(r["answers"] for r in group)
        mean = lambda key: sum(r[key] for r in group) / len(group)  # noqa: E731
        rows.append({
            "agents": agents, "answer_rate": rate, "mode": mode, "seeds": len(group),
            "dials": sum(r["dials"] for r in group), "answers": answers,
            "abandons": sum(r["abandons"] for r in group),
            "abandon_rate": sum(r["abandons"] for r in group) / answers if answers else 0.0,
            "talk_utilization": mean("talk_utilization"), "occupancy": mean("occupancy"),
            "talk_minutes_per_agent_hour": mean("talk_minutes_per_agent_hour"),
            "mean_agent_wait_s": mean("mean_agent_wait_s"), "wall_s_per_shift": mean("wall_s"),
        })
    return rows


def decide_cost_us(agents: int, seed: int = 1, hours: float = 1.0) -> float:
    """Microseconds per predictive decide() call, timed inside a simulated shift (table rebuilds included)."""
    spent = [0.0, 0]

    def timing_factory(campaign):
        policy = make_policy(campaign.pacing, abandon_window_s=86400.0, connect_limit_s=campaign.connect_limit_s)
        decide = policy.decide

        def timed(snapshot):
            started = time.perf_counter()
            launched = decide(snapshot)
            spent[0] += time.perf_counter() - started
            spent[1] += 1
            return launched

        policy.decide = timed  # type: ignore[method-assign]
        return policy

    run_simulation(scenario(agents, 0.30, hours), PacingSettings(), seed=seed, policy_factory=timing_factory)
    return spent[0] / spent[1] * 1e6


def open_loop_reference(agents: int, talk_s: float = 180.0, wrap_s: float = 10.0, patience_s: float = 2.0) -> float:
    """Talk utilisation of a dialler launching at a constant rate (Poisson answers) with 3 % abandoned: Erlang A
    with the connect limit as mean patience. What feedback from the pacer has to beat."""
    service_rate = 1.0 / (talk_s + wrap_s)
    abandon = lambda rate: erlang_a(agents, rate, service_rate, 1.0 / patience_s).abandon_probability  # noqa: E731
    rate = brentq(lambda r: abandon(r) - ABANDON_GOAL, 1e-6, 10.0 * agents * service_rate)
    return erlang_a(agents, rate, service_rate, 1.0 / patience_s).utilisation * talk_s / (talk_s + wrap_s)


def print_table(rows: list[dict]) -> None:
    print(f"{'agents':>6} {'answer':>6} {'mode':>11} {'dials':>7} {'answers':>7} {'aband.':>6} {'aband.%':>7} "
          f"{'talk%':>6} {'occup%':>6} {'talkmin/h':>9} {'wait_s':>6} {'wall_s':>6}")
    for r in rows:
        print(f"{r['agents']:>6} {r['answer_rate']:>6.2f} {r['mode']:>11} {r['dials']:>7} {r['answers']:>7} "
              f"{r['abandons']:>6} {100 * r['abandon_rate']:>7.2f} {100 * r['talk_utilization']:>6.2f} "
              f"{100 * r['occupancy']:>6.2f} {r['talk_minutes_per_agent_hour']:>9.2f} "
              f"{r['mean_agent_wait_s']:>6.1f} {r['wall_s_per_shift']:>6.1f}")


def check_goals(rows: list[dict]) -> list[str]:
    lines = []
    by = {(r["agents"], r["answer_rate"], r["mode"]): r for r in rows}
    for agents, goal in GOALS_AT_30.items():
        ours = by.get((agents, 0.30, "predictive"))
        if ours is None:
            continue
        met = ours["abandon_rate"] <= ABANDON_GOAL and ours["talk_utilization"] >= goal
        lines.append(f"{agents:>3} agents at 30%: talk {100 * ours['talk_utilization']:.2f}% (goal {100 * goal:.0f}%),"
                     f" abandon {100 * ours['abandon_rate']:.2f}% (goal <= 3.0%): {'MET' if met else 'NOT MET'}")
    ours, adapt = by.get((20, 0.30, "predictive")), by.get((20, 0.30, "adapt"))
    if ours and adapt:
        gain = 100 * (ours["talk_utilization"] - adapt["talk_utilization"])
        met = gain >= 5.0 and ours["abandon_rate"] <= adapt["abandon_rate"]
        lines.append(f" 20 agents at 30% vs ADAPT: +{gain:.2f} points talk, abandon {100 * ours['abandon_rate']:.2f}%"
                     f" vs {100 * adapt['abandon_rate']:.2f}%: {'MET' if met else 'NOT MET'}")
    over = [r for r in rows if r["mode"] == "predictive" and r["abandon_rate"] > ABANDON_GOAL]
    lines.append("predictive abandon rate <= 3.0% in every scenario: " + ("MET" if not over else
                 "NOT MET in " + ", ".join(f"{r['agents']}@{r['answer_rate']}" for r in over)))
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = {"progressive": "o", "adapt": "s", "predictive": "*"}
    colours = {5: "tab:blue", 20: "tab:orange", 100: "tab:green"}
    for r in rows:
        ax.scatter(100 * r["abandon_rate"], 100 * r["talk_utilization"], marker=markers[r["mode"]],
                   color=colours.get(r["agents"], "grey"), s=90 if r["mode"] == "predictive" else 45)
        ax.annotate(f"{r['answer_rate']:.2f}", (100 * r["abandon_rate"], 100 * r["talk_utilization"]),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvline(100 * ABANDON_GOAL, color="red", linestyle="--", linewidth=1)
    ax.axhline(100 * 180 / 190, color="grey", linestyle=":", linewidth=1)
    for mode, marker in markers.items():
        ax.scatter([], [], marker=marker, color="black", label=mode)
    for agents, colour in colours.items():
        ax.scatter([], [], marker="o", color=colour, label=f"{agents} agents")
    ax.set_xlabel("abandon rate, % of answered (pooled over seeds)")
    ax.set_ylabel("talk utilisation, % of logged-in time")
    ax.set_title("Pacing frontier (labels: answer rate)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.15, 0.30, 0.50])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS / "pacing_frontier.json")
    args = parser.parse_args(argv)

    jobs = [(mode, agents, rate, seed, args.hours) for agents in sorted(args.agents, reverse=True)
            for rate in args.rates for mode in args.modes for seed in range(1, args.seeds + 1)]
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        runs = pool.map(run_one, jobs, chunksize=1)
    elapsed = time.perf_counter() - started
    rows = pool_runs(runs)
    print_table(rows)
    simulated_h = sum(r["hours"] * r["agents"] for r in runs)
    print(f"\n{len(runs)} shifts ({simulated_h:.0f} agent-hours simulated) in {elapsed:.1f} s wall with "
          f"{args.workers} workers (machine shared with other work)")
    costs = {agents: decide_cost_us(agents) for agents in (20, 100)}
    for agents, cost in costs.items():
        print(f"predictive decide(): {cost:.0f} us per call with {agents} agents")
    reference = {agents: open_loop_reference(agents) for agents in sorted(set(args.agents))}
    for agents, utilisation in reference.items():
        print(f"open-loop reference (Erlang A, constant dial rate, 3 % abandoned): {agents} agents,"
              f" talk {100 * utilisation:.1f}%")
    goals = check_goals(rows)
    print("\n" + "\n".join(goals))
    write_results(args.output, {"rows": rows, "runs": runs, "decide_us": costs, "goals": goals,
                                "open_loop_reference": reference, "wall_s": elapsed}, plot)
    return 0


def write_results(output: Path, payload: dict, plot_rows) -> None:
    """The benchmark's JSON at `output` and its figure beside it (same name, .png), drawn by plot_rows(rows, png)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2))
    png = output.with_suffix(".png")
    plot_rows(payload["rows"], png)
    print(f"wrote {output} and {png}")


if __name__ == "__main__":
    sys.exit(main())
