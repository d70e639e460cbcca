"""`dialer simulate`: a shift of the real engine core against a simulated carrier, on a virtual clock."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from dialer.config import ConfigError, load_config

# (flag, Scenario field, type, help)
SCENARIO_FLAGS = (
    ("--agents", "agents", int, "agents logged in for the shift"),
    ("--hit-rate", "answer_rate", float, "share of dials answered by the callee, 0..1"),
    ("--hours", "hours", float, "shift length, hours"),
    ("--busy-rate", "busy_rate", float, "share of dials answered busy, 0..1"),
    ("--invalid-rate", "invalid_rate", float, "share of dials to invalid numbers, 0..1"),
    ("--ring-mean-s", "ring_mean_s", float, "ring time to answer, mean, seconds"),
    ("--ring-sd-s", "ring_sd_s", float, "ring time to answer, standard deviation, seconds"),
    ("--no-answer-timeout-s", "no_answer_timeout_s", float, "ring timeout, seconds"),
    ("--talk-mean-s", "talk_mean_s", float, "conversation, mean, seconds"),
    ("--talk-sd-s", "talk_sd_s", float, "conversation, standard deviation, seconds"),
    ("--wrap-up-s", "wrap_up_s", float, "agent wrap-up after each call, seconds"),
    ("--connect-limit-s", "connect_limit_s", float, "answered call must reach an agent within this, seconds"),
    ("--caller-patience-mean-s", "caller_patience_mean_s", float, "mean time a callee waits in silence, seconds"),
    ("--answer-rate-change-at-h", "answer_rate_change_at_h", float, "hour at which the answer rate changes"),
    ("--answer-rate-after", "answer_rate_after", float, "answer rate after that change, 0..1"),
    ("--breaks-per-agent", "breaks_per_agent", int, "breaks each agent takes"),
    ("--break-s", "break_s", float, "length of each break, seconds"),
)
PACING_FLAGS = (
    ("--mode", "mode", str, "pacing policy: preview, progressive, predictive (or adapt, for comparison)"),
    ("--target-abandon-rate", "target_abandon_rate", float, "abandoned / answered calls to stay under, 0..1"),
    ("--max-lines-per-agent", "max_lines_per_agent", float, "cap on lines per available agent"),
    ("--interval-s", "interval_s", float, "pacing decision interval, seconds"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a shift with the real engine core on a virtual clock",
        description="Run the engine core against a simulated carrier and agents, much faster than real time, "
        "and report dials, answers, abandons, utilisation and a per-30-minute series.",
    )
    for flag, field, kind, text in SCENARIO_FLAGS + PACING_FLAGS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result); default 0")
    parser.add_argument("--config", type=Path, help="take pacing, wrap-up, connect limit and ring timeout from a config")
    parser.add_argument("--campaign", help="campaign in --config (default: the first)")
    parser.add_argument("--abandon-window-s", type=float, default=86400.0,
                        help="regulatory window of the abandon-rate control loop, seconds; default 86400")
    parser.add_argument("--rule-pack", choices=("us", "uk", "cn"),
                        help="send every lead through the compliance gate with this rule pack (default: allow all)")
    parser.add_argument("--start-at", type=_aware_datetime, metavar="ISO8601",
                        help="wall-clock start of the shift for the rule pack, with offset; default 2026-03-03T14:00Z")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="plot utilisation and abandon rate per 30 min")
    parser.set_defaults(handler=simulate)


def _aware_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. 2026-03-03T14:00+00:00)")
    return value


def build_inputs(args: argparse.Namespace):
    """The Scenario and PacingSettings from a campaign config (if given) and the flags (which win)."""
    from pacing.settings import PacingSettings
    from pacing.simulator import Scenario

    scenario_values: dict = {}
    pacing_values: dict = {}
    if args.config is not None:
        config = load_config(args.config)
        campaigns = {c.name: c for c in config.campaigns}
        if not campaigns:
            raise ConfigError(args.config, ["campaigns: no campaign to simulate"])
        if args.campaign is not None and args.campaign not in campaigns:
            raise ConfigError(args.config, [f"campaigns: no campaign {args.campaign!r} (have: {', '.join(campaigns)})"])
        campaign = campaigns[args.campaign] if args.campaign else config.campaigns[0]
        pacing_values = campaign.pacing.model_dump()
        scenario_values = dict(wrap_up_s=campaign.wrap_up_s, connect_limit_s=campaign.connect_limit_s,
                               no_answer_timeout_s=campaign.ring_timeout_s)
    for _, field, _, _ in SCENARIO_FLAGS:
        if getattr(args, field) is not None:
            scenario_values[field] = getattr(args, field)
    for _, field, _, _ in PACING_FLAGS:
        if getattr(args, field) is not None:
            pacing_values[field] = getattr(args, field)
    return Scenario(**scenario_values), PacingSettings(**pacing_values)


def simulate(args: argparse.Namespace) -> int:
    from dialer.simulate import Simulation, make_gate

    try:
        scenario, pacing_settings = build_inputs(args)
    except ValidationError as exc:
        print(f"dialer simulate: invalid options:\n{_validation_lines(exc)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.perf_counter()
    gate = make_gate(scenario, pacing_settings, args.rule_pack, args.start_at, args.seed)
    simulation = Simulation(scenario, pacing_settings, seed=args.seed, abandon_window_s=args.abandon_window_s,
                            gate=gate)
    try:
        report = simulation.run()
    finally:
        simulation.close()
    elapsed_s = time.perf_counter() - started
    tally = simulation.tally()
    summary = {"mode": pacing_settings.mode, "seed": args.seed, **report.to_dict(),
               "outcomes": tally.outcomes, "rule_pack": args.rule_pack, "gate_refusals": tally.gate_refusals}
    if args.plot is not None:
        plot_series(summary, pacing_settings.target_abandon_rate, args.plot)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary, elapsed_s))
    return 0


def _validation_lines(exc: ValidationError) -> str:
    flags = {field: flag for flag, field, _, _ in SCENARIO_FLAGS + PACING_FLAGS}
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        lines.append(f"  {flags.get(field, field or 'options')}: {error['msg']}")
    return "\n".join(lines)


def format_summary(summary: dict, elapsed_s: float) -> str:
    lines = [
        f"{summary['mode']} pacing, {summary['agents']} agents, {summary['hours']:g} h, seed {summary['seed']}"
        f" (simulated in {elapsed_s:.1f} s)",
        f"  dials {summary['dials']}, answers {summary['answers']}, abandons {summary['abandons']}"
        f" (abandon rate {summary['abandon_rate']:.2%})",
        f"  talk utilisation {summary['talk_utilization']:.1%}, occupancy {summary['occupancy']:.1%},"
        f" talk {summary['talk_minutes_per_agent_hour']:.1f} min per agent-hour,"
        f" mean agent wait {summary['mean_agent_wait_s']:.1f} s",
        "  outcomes: " + (", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()) or "none"),
        f"  gate ({summary['rule_pack'] or 'allow all'}) refusals: "
        + (", ".join(f"{k} {v}" for k, v in summary["gate_refusals"].items()) or "none"),
        "",
        "  hour   dials  answers  abandons  abandon  talk util",
    ]
    for point in summary["series"]:
        lines.append(
            f"  {point['start_h']:4.1f}  {point['dials']:6d}  {point['answers']:7d}  {point['abandons']:8d}"
            f"  {point['abandon_rate']:7.2%}  {point['talk_utilization']:9.1%}"
        )
    return "\n".join(lines)


def plot_series(summary: dict, target_abandon_rate: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [p["start_h"] for p in summary["series"]]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    top.step(hours, [p["talk_utilization"] for p in summary["series"]], where="post")
    top.set_ylabel("talk utilisation")
    top.set_ylim(0, 1)
    bottom.step(hours, [p["abandon_rate"] for p in summary["series"]], where="post", color="tab:red")
    bottom.axhline(target_abandon_rate, linestyle="--", color="grey", label="target")
    bottom.set_ylabel("abandon rate")
    bottom.set_xlabel("hour of shift")
    bottom.legend()
    fig.suptitle(f"dialer simulate: {summary['mode']}, {summary['agents']} agents, seed {summary['seed']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
