"""Pacing ceiling: the predictive policy given part of the simulated world's future, an upper reference for pacing.

Diagnostic only: the oracles read the simulated world's hidden plans (pacing.simulator.SimulatedWorld's
planned_talk_ends / planned_answers), which no engine can see. Each runs the real engine core against the world
(dialer.simulate.Simulation), with the predictive policy's abandonment model and closed loop, but:

- ``talks``: it knows when every running conversation will end (a perfect availability forecast); call outcomes
  (answer or not, ring time) stay random to it. What any policy that cannot foresee talk ends could at best do
  with this decision rule.
- ``outcomes``: it knows, for every call already ringing, whether and when it will be answered; talk ends stay
  random (estimated from elapsed talk time as the real policy does). New calls' outcomes stay unknown.
- ``both``: the two together.
- ``none``: the real predictive policy, through the same code path (the baseline).

The closed loop holds each at the same abandon target (3 %), so the talk utilisations compare directly.

    python benchmarks/pacing_ceiling.py                  # 20 and 100 agents, 30 % answer rate, 5 seeds x 8 h
    python benchmarks/pacing_ceiling.py --hours 2 --seeds 2 --agents 20 --oracles talks
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pacing_frontier import ABANDON_GOAL, GOALS_AT_30, scenario, write_results  # noqa: E402
from dialer.config import CampaignSettings  # noqa: E402
from dialer.simulate import DEFAULT_ABANDON_WINDOW_S, Simulation  # noqa: E402
from pacing.policies import PredictivePolicy  # noqa: E402
from pacing.model import Snapshot  # noqa: E402
from pacing.settings import PacingSettings  # noqa: E402
from pacing.simulator import SimulatedWorld  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ORACLES = ("none", "outcomes", "talks", "both")
CEILING = 180.0 / 190.0


class OraclePolicy(PredictivePolicy):
    """PredictivePolicy whose model takes talk ends and/or ringing calls' outcomes from the world instead of
    estimating them. Everything else (closed loop, cold start, caps, the new calls' answer model) is unchanged."""

    def __init__(self, settings: PacingSettings, *, abandon_window_s: float, connect_limit_s: float,
                 wrap_up_s: float, knows_talks: bool, knows_outcomes: bool) -> None:
        super().__init__(settings, abandon_window_s=abandon_window_s, connect_limit_s=connect_limit_s)
        self.wrap_up_s = wrap_up_s
        self.knows_talks = knows_talks
        self.knows_outcomes = knows_outcomes
        self.world: SimulatedWorld | None = None  # set by the benchmark once the simulation exists

    def _agents_free_by(self, snapshot: Snapshot) -> np.ndarray:
        if not self.knows_talks:
            return super()._agents_free_by(snapshot)
        assert self.world is not None
        ends = self.world.planned_talk_ends()
        free_in = []
        for agent in snapshot.agents:
            if agent.state == "talking":
                free_in.append(ends[agent.agent_id] + self.wrap_up_s - snapshot.now)
            elif agent.state == "wrap_up":
                free_in.append(self.wrap_up_s - agent.state_elapsed_s)
        within = self._grid + self.connect_limit_s
        return (np.asarray(free_in, dtype=float)[:, None] <= within[None, :]).astype(float).reshape(-1, within.size)

    def _answers_in_flight(self, snapshot: Snapshot) -> np.ndarray:
        if not self.knows_outcomes:
            return super()._answers_in_flight(snapshot)
        assert self.world is not None
        planned = self.world.planned_answers()
        # leads granted but not yet dialled ("pending-") have no outcome drawn yet: estimated as the policy does
        pending = [c.ringing_elapsed_s for c in snapshot.calls_in_flight if c.call_id.startswith("pending-")]
        dialled = [c for c in snapshot.calls_in_flight if not c.call_id.startswith("pending-")]
        answer_in = np.asarray([planned.get(c.call_id, np.inf) - snapshot.now for c in dialled], dtype=float)
        certain = (answer_in[:, None] <= self._grid[None, :]).astype(float).reshape(-1, self._grid.size)
        return np.concatenate((certain, self._answers_by(pending)))


def run_one(job: tuple[str, int, float, int, float, dict]) -> dict:
    oracle, agents, rate, seed, hours, overrides = job
    started = time.perf_counter()
    world_scenario = scenario(agents, rate, hours)
    settings = PacingSettings(**overrides)
    policies: list[OraclePolicy] = []

    def factory(campaign: CampaignSettings) -> OraclePolicy:
        policy = OraclePolicy(campaign.pacing, abandon_window_s=DEFAULT_ABANDON_WINDOW_S,
                              connect_limit_s=campaign.connect_limit_s, wrap_up_s=campaign.wrap_up_s,
                              knows_talks=oracle in ("talks", "both"), knows_outcomes=oracle in ("outcomes", "both"))
        policies.append(policy)
        return policy

    simulation = Simulation(world_scenario, settings, seed=seed, policy_factory=factory)
    for policy in policies:
        policy.world = simulation.world
    try:
        report = simulation.run()
    finally:
        simulation.close()
    return {
        "oracle": oracle, "agents": agents, "answer_rate": rate, "seed": seed, "hours": hours, "settings": overrides,
        "wall_s": time.perf_counter() - started, "dials": report.dials, "answers": report.answers,
        "abandons": report.abandons, "abandon_rate": report.abandon_rate,
        "talk_utilization": report.talk_utilization, "mean_agent_wait_s": report.mean_agent_wait_s,
    }


def pool_runs(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["agents"], run["answer_rate"], run["oracle"], json.dumps(run["settings"])), []).append(run)
    rows = []
    for (agents, rate, oracle, overrides), group in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][1], ORACLES.index(kv[0][2]), kv[0][3])):
        answers = sum(r["answers"] for r in group)
        rows.append({
            "agents": agents, "answer_rate": rate, "oracle": oracle, "settings": json.loads(overrides),
            "seeds": len(group), "answers": answers, "abandons": sum(r["abandons"] for r in group),
            "abandon_rate": sum(r["abandons"] for r in group) / answers if answers else 0.0,
            "talk_utilization": sum(r["talk_utilization"] for r in group) / len(group),
            "mean_agent_wait_s": sum(r["mean_agent_wait_s"] for r in group) / len(group),
        })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'agents':>6} {'answer':>6} {'knows':>9} {'answers':>8} {'aband.%':>7} {'talk%':>6} {'goal%':>5} "
          f"{'wait_s':>6}  settings")
    for r in rows:
        goal = GOALS_AT_30.get(r["agents"]) if abs(r["answer_rate"] - 0.30) < 1e-9 else None
        print(f"{r['agents']:>6} {r['answer_rate']:>6.2f} {r['oracle']:>9} {r['answers']:>8} "
              f"{100 * r['abandon_rate']:>7.2f} {100 * r['talk_utilization']:>6.2f} "
              f"{'' if goal is None else f'{100 * goal:.0f}':>5} {r['mean_agent_wait_s']:>6.1f}  {r['settings'] or ''}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = sorted({r["agents"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.8 / len(ORACLES)
    for i, oracle in enumerate(ORACLES):
        values = [next((100 * r["talk_utilization"] for r in rows if r["agents"] == a and r["oracle"] == oracle
                        and not r["settings"]), np.nan) for a in agents]
        ax.bar(np.arange(len(agents)) + (i - (len(ORACLES) - 1) / 2) * width, values, width, label=f"knows {oracle}")
    for j, a in enumerate(agents):
        if a in GOALS_AT_30:
            ax.hlines(100 * GOALS_AT_30[a], j - 0.45, j + 0.45, colors="red", linestyles="--", linewidth=1)
    ax.axhline(100 * CEILING, color="grey", linestyle=":", linewidth=1, label="talk / (talk + wrap-up)")
    ax.set_xticks(np.arange(len(agents)), [f"{a} agents" for a in agents])
    ax.set_ylim(80, 96)
    ax.set_ylabel("talk utilisation, % (abandoned <= 3 %, pooled)")
    ax.set_title("Predictive pacing with part of the future known (red: issue 5 goals)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--agents", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.30])
    parser.add_argument("--oracles", nargs="+", default=list(ORACLES), choices=ORACLES)
    parser.add_argument("--settings", type=json.loads, default={}, help="PacingSettings overrides, JSON")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS / "pacing_ceiling.json")
    args = parser.parse_args(argv)

    jobs = [(oracle, agents, rate, seed, args.hours, args.settings) for agents in sorted(args.agents, reverse=True)
            for rate in args.rates for oracle in args.oracles for seed in range(1, args.seeds + 1)]
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        runs = pool.map(run_one, jobs, chunksize=1)
    elapsed = time.perf_counter() - started
    rows = pool_runs(runs)
    print_table(rows)
    print(f"\n{len(runs)} shifts in {elapsed:.1f} s wall with {args.workers} workers")
    write_results(args.output, {"rows": rows, "runs": runs, "abandon_goal": ABANDON_GOAL, "wall_s": elapsed}, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
