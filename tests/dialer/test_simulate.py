"""`dialer simulate` runs the real engine core against the simulated world on a virtual clock."""

from __future__ import annotations

import json

import pytest

from dialer.cli import main
from dialer.core.trunks import TrunkPool
from dialer.simulate import Simulation, run_simulation
from pacing.settings import PacingSettings
from pacing.simulator import Scenario

KEYS = {"dials", "answers", "abandons", "abandon_rate", "talk_utilization", "occupancy",
        "talk_minutes_per_agent_hour", "mean_agent_wait_s", "series"}
SERIES_KEYS = {"start_h", "dials", "answers", "abandons", "abandon_rate", "talk_utilization"}


def run_cli(capsys, *argv: str) -> dict:
    assert main(["simulate", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_output_has_every_kpi_and_a_half_hour_series(capsys):
    report = run_cli(capsys, "--agents", "5", "--hours", "1", "--hit-rate", "0.3", "--mode", "predictive", "--json")
    assert KEYS <= report.keys()
    assert [p["start_h"] for p in report["series"]] == [0.0, 0.5]
    assert all(SERIES_KEYS <= p.keys() for p in report["series"])
    assert sum(p["dials"] for p in report["series"]) == report["dials"] > 0
    assert 0 < report["talk_utilization"] <= report["occupancy"] <= 1


def test_same_seed_same_result_other_seed_other_result(capsys):
    argv = ("--agents", "5", "--hours", "0.5", "--json")
    first = run_cli(capsys, *argv, "--seed", "11")
    assert run_cli(capsys, *argv, "--seed", "11") == first
    assert run_cli(capsys, *argv, "--seed", "12") != first


def test_scenario_knobs_reach_the_world(capsys):
    base = ("--agents", "5", "--hours", "0.5", "--mode", "progressive", "--json")
    report = run_cli(capsys, *base, "--hit-rate", "0.0", "--busy-rate", "1.0", "--invalid-rate", "0")
    assert report["answers"] == 0 and report["dials"] > 0 and report["talk_utilization"] == 0


def test_bad_option_is_reported_by_flag(capsys):
    assert main(["simulate", "--hit-rate", "0.9", "--busy-rate", "0.5"]) == 2
    assert main(["simulate", "--agents", "0"]) == 2
    assert "--agents" in capsys.readouterr().err


def test_plot_is_written(tmp_path, capsys):
    target = tmp_path / "shift.png"
    run_cli(capsys, "--agents", "3", "--hours", "0.5", "--json", "--plot", str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_campaign_config_supplies_pacing_and_engine_numbers(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        "api: {token: 0123456789abcdef0123}\n"
        "trunks: [{name: t1, host: 127.0.0.1}]\n"
        "campaigns:\n"
        "  - {name: spring, caller_id: '+14155550100', trunks: [t1], wrap_up_s: 30,\n"
        "     pacing: {mode: progressive}}\n"
    )
    report = run_cli(capsys, "--config", str(config), "--agents", "4", "--hours", "0.5", "--json")
    assert report["mode"] == "progressive"
    assert main(["simulate", "--config", str(config), "--campaign", "nope"]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err


def test_every_answered_call_is_bridged_within_the_connect_limit_or_announced():
    scenario = Scenario(agents=10, hours=1, connect_limit_s=2.0)
    simulation = Simulation(scenario, PacingSettings(mode="predictive"), seed=5)
    report = simulation.run()
    tally = simulation.tally()
    waits = [delay for _, delay in simulation.world.log.connects]
    assert waits and max(waits) <= 2.0  # measured by the world, not the engine
    assert tally.bridges == len(waits)
    assert report.answers - 10 <= tally.bridges + tally.announcements <= report.answers  # up to 10 still waiting at the end
    assert tally.announcements == report.abandons


def test_progressive_never_abandons_when_agents_do_not_leave():
    report = run_simulation(Scenario(agents=5, hours=1), PacingSettings(mode="progressive"), seed=2)
    assert report.abandons == 0 and report.answers > 0


def test_trunk_channels_cap_the_simulated_engine(monkeypatch):
    peak = []
    original = TrunkPool.start

    def start(self, name, now):
        original(self, name, now)
        peak.append(self[name].in_use)

    monkeypatch.setattr(TrunkPool, "start", start)
    run_simulation(Scenario(agents=10, hours=0.5), PacingSettings(mode="predictive"), seed=1, trunk_channels=4)
    assert max(peak) == 4


def test_hours_override_and_breaks():
    report = run_simulation(Scenario(agents=4, hours=8, breaks_per_agent=1, break_s=600),
                            PacingSettings(mode="progressive"), seed=1, hours=1)
    assert report.hours == 1 and len(report.series) == 2


@pytest.mark.parametrize("mode", ["preview", "progressive", "predictive"])
def test_every_mode_runs(mode):
    report = run_simulation(Scenario(agents=3, hours=0.5), PacingSettings(mode=mode), seed=4)
    assert report.dials > 0


def test_rule_pack_gate_refuses_numbers_outside_their_calling_window(capsys):
    # 13:30 UTC on 3 March (before DST): 08:30 in New York and Miami (open); 07:30 Chicago, 06:30 Denver,
    # 05:30 San Francisco, 04:30 Anchorage (closed)
    report = run_cli(capsys, "--agents", "2", "--hours", "0.1", "--mode", "progressive", "--json",
                     "--rule-pack", "us", "--start-at", "2026-03-03T13:30:00+00:00")
    assert report["rule_pack"] == "us"
    assert report["gate_refusals"].get("outside_calling_window", 0) > 0
    assert set(report["gate_refusals"]) <= {"outside_calling_window"}
    assert report["dials"] > 0 and sum(report["outcomes"].values()) <= report["dials"]


def test_rule_pack_gate_never_lets_a_refused_number_be_dialled():
    from datetime import datetime

    from dialer.simulate import make_gate

    scenario = Scenario(agents=2, hours=0.05)
    gate = make_gate(scenario, PacingSettings(mode="progressive"), "us",
                     datetime.fromisoformat("2026-03-03T13:30:00+00:00"), 3)
    simulation = Simulation(scenario, PacingSettings(mode="progressive"), seed=3, gate=gate)
    dialled, refused = [], []
    original = simulation._carry_out

    def spy(command, now):
        if type(command).__name__ == "Originate":
            dialled.append(command.number)
        original(command, now)

    simulation._carry_out = spy
    grant = gate.grant

    def spying_grant(campaign, request_id, count, now):
        answer = grant(campaign, request_id, count, now)
        refused.extend(e.lead_id for e in answer if type(e).__name__ == "LeadRefused")
        return answer

    gate.grant = spying_grant
    try:
        simulation.run()
    finally:
        simulation.close()
    assert dialled and refused
    assert {number[:5] for number in dialled} <= {"+1212", "+1305"}  # only New York and Miami are open at 08:30


def test_start_at_needs_an_offset(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--rule-pack", "us", "--start-at", "2026-03-03T13:30:00"])
    assert "needs a UTC offset" in capsys.readouterr().err


def test_gate_abandon_cap_forces_the_predictive_pacer_to_progressive():
    from dialer.core import events as ev
    from dialer.simulate_gate import AllowAllGate

    class CapAlwaysOn(AllowAllGate):
        def __init__(self):
            super().__init__()
            self.sent = False

        def abandon_cap(self, campaign, now):
            if self.sent:
                return None
            self.sent = True
            return ev.AbandonCapChanged(campaign, True)

    scenario = Scenario(agents=10, hours=1)
    free = run_simulation(scenario, PacingSettings(mode="predictive"), seed=5)
    capped = Simulation(scenario, PacingSettings(mode="predictive"), seed=5, gate=CapAlwaysOn())
    report = capped.run()
    capped.close()
    assert free.abandons > 0
    assert report.abandons == 0 and report.answers > 0
