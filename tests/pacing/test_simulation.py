"""Shifts of the real engine core (dialer.simulate) against the simulated world, paced by our policies.

Figures to compare with (benchmarks/pacing_frontier.py, 8 h, 5 seeds): 20 agents at a 30 % answer rate, predictive
86.5 % talk utilisation at 2.64 % abandoned, progressive 71.5 % with none. These 2-hour shifts include the cold start.
"""

import pytest

from dialer.simulate import run_simulation
from pacing.settings import PacingSettings
from pacing.simulator import Scenario

TARGET = PacingSettings().target_abandon_rate


@pytest.fixture(scope="module")
def twenty_agents_two_hours():
    scenario = Scenario(agents=20, hours=2, answer_rate=0.30)
    return (
        run_simulation(scenario, PacingSettings(mode="predictive"), seed=1),
        run_simulation(scenario, PacingSettings(mode="progressive"), seed=1),
    )


def test_predictive_keeps_abandonment_under_target(twenty_agents_two_hours):
    predictive, _ = twenty_agents_two_hours
    assert predictive.answers > 600
    assert predictive.abandon_rate <= TARGET


def test_predictive_utilisation_stays_near_the_benchmark_and_far_above_progressive(twenty_agents_two_hours):
    predictive, progressive = twenty_agents_two_hours
    assert predictive.talk_utilization >= 0.84
    assert predictive.talk_utilization >= progressive.talk_utilization + 0.09
    assert progressive.abandons == 0
    assert predictive.mean_agent_wait_s < progressive.mean_agent_wait_s / 2


def test_answer_rate_halving_mid_shift_does_not_push_abandonment_over_target():
    scenario = Scenario(agents=20, hours=2, answer_rate=0.30, answer_rate_change_at_h=1.0, answer_rate_after=0.15)
    report = run_simulation(scenario, PacingSettings(), seed=2)
    assert report.abandon_rate <= TARGET
    after = report.series[2:]
    assert sum(p.abandons for p in after) <= TARGET * sum(p.answers for p in after) + 2
    assert sum(p.talk_utilization for p in after) / len(after) >= 0.70


def test_agents_on_break_are_not_paced_for():
    scenario = Scenario(agents=20, hours=2, answer_rate=0.30, breaks_per_agent=1, break_s=900)
    report = run_simulation(scenario, PacingSettings(), seed=1)
    assert report.abandon_rate <= TARGET
    # 1/8 of logged-in time is on break: talk can reach at most 7/8 of the ceiling
    assert 0.70 <= report.talk_utilization <= 0.875 * 180 / 190
