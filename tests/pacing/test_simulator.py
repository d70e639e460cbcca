import pytest

from dialer.simulate import run_simulation
from pacing.settings import PacingSettings
from pacing.simulator import (
    CallAnswered,
    CallFailed,
    Scenario,
    SimulatedWorld,
    SimulationError,
    TalkFinished,
)


def _drain(world: SimulatedWorld, until: float):
    return world.pop_events(until)


def test_outcome_mix_and_ring_times_follow_the_scenario():
    scenario = Scenario(agents=1, hours=10, answer_rate=0.4, busy_rate=0.1, invalid_rate=0.05)
    world = SimulatedWorld(scenario, seed=3)
    for i in range(20000):
        world.dial(f"c{i}", 0.0)
    events = _drain(world, 100.0)
    answered = [e for e in events if isinstance(e, CallAnswered)]
    failed = [e for e in events if isinstance(e, CallFailed)]
    assert len(answered) + len(failed) == 20000
    by_outcome = {o: sum(1 for e in failed if e.outcome == o) for o in ("busy", "invalid", "no_answer")}
    assert by_outcome["busy"] / 20000 == pytest.approx(0.10, abs=0.01)
    assert by_outcome["invalid"] / 20000 == pytest.approx(0.05, abs=0.01)
    # a few answers exceed the 25 s timeout and end as no answer instead
    assert len(answered) / 20000 == pytest.approx(0.40 * 0.963, abs=0.012)
    ring = sorted(e.at for e in answered)
    assert sum(ring) / len(ring) == pytest.approx(11.3, abs=0.4)  # lognormal mean 12 truncated at 25 s
    assert max(ring) < 25.0
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(e.sip_code == 480 for e in failed if e.outcome == "no_answer")


def test_same_seed_same_world_and_different_seed_differs():
    def run(seed):
        world = SimulatedWorld(Scenario(agents=2, hours=1), seed)
        events = []
        for i in range(50):
            events += world.pop_events(float(i))
            world.dial(f"c{i}", float(i))
        events += world.pop_events(1e9)
        return [(type(e).__name__, round(e.at, 9)) for e in events]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_world_obeys_connect_and_drop_and_rejects_bad_commands():
    world = SimulatedWorld(Scenario(agents=2, hours=1, answer_rate=1.0, busy_rate=0, invalid_rate=0, no_answer_timeout_s=900), 1)
    for i in range(30):
        world.dial(f"c{i}", 0.0)
    first, second = (world.pop_events(world.next_event_time())[0] for _ in range(2))
    assert isinstance(first, CallAnswered) and isinstance(second, CallAnswered)
    world.connect(first.call_id, "agent-001", second.at)
    with pytest.raises(SimulationError, match="already talking"):
        world.connect(second.call_id, "agent-001", second.at)
    answered = [first, second] + [e for e in world.pop_events(second.at + 2.0) if isinstance(e, CallAnswered)]
    world.drop(second.call_id, second.at + 2.0)
    with pytest.raises(SimulationError, match="not answered"):
        world.connect(second.call_id, "agent-002", second.at + 2.0)
    with pytest.raises(SimulationError, match="unknown call"):
        world.drop("nope", second.at + 2.0)
    with pytest.raises(SimulationError, match="backwards"):
        world.dial("late", 0.0)
    events = world.pop_events(1e9)
    finished = [e for e in events if isinstance(e, TalkFinished)]
    assert [(e.call_id, e.agent_id) for e in finished] == [(first.call_id, "agent-001")]
    answered += [e for e in events if isinstance(e, CallAnswered)]
    report = world.report()
    assert report.answers == len(answered) and report.abandons == 1


def test_scenario_rejects_impossible_mix():
    with pytest.raises(ValueError, match="answer_rate"):
        Scenario(answer_rate=0.9, busy_rate=0.1, invalid_rate=0.05)
    with pytest.raises(ValueError, match="go together"):
        Scenario(answer_rate_change_at_h=2.0)


def test_progressive_shift_never_abandons_and_report_is_consistent():
    scenario = Scenario(agents=5, hours=1, answer_rate=0.3)
    report = run_simulation(scenario, PacingSettings(mode="progressive"), seed=1)
    assert report.abandons == 0
    assert report.answers > 50
    assert 0 < report.talk_utilization < report.occupancy <= 1
    assert report.talk_minutes_per_agent_hour == pytest.approx(60 * report.talk_utilization)
    assert sum(p.dials for p in report.series) == report.dials
    assert len(report.series) == 2


def test_report_kpis_from_a_hand_driven_shift():
    scenario = Scenario(
        agents=2, hours=1, answer_rate=1.0, busy_rate=0, invalid_rate=0, ring_mean_s=10, ring_sd_s=1e-6,
        talk_mean_s=100, talk_sd_s=1e-6, wrap_up_s=10,
    )
    world = SimulatedWorld(scenario, seed=5)
    world.dial("a", 0.0)
    events = world.pop_events(1790.0)
    world.dial("b", 1790.0)
    events += world.pop_events(1795.0)
    world.dial("c", 1795.0)
    events += world.pop_events(1800.5)
    assert [(type(e).__name__, e.call_id, round(e.at, 3)) for e in events] == [
        ("CallAnswered", "a", 10.0), ("CallAnswered", "b", 1800.0)]
    world.connect("b", "agent-001", 1800.5)
    assert [e.call_id for e in world.pop_events(1807.0)] == ["c"]
    world.drop("c", 1807.0)  # "a" was never connected: answered, then left; "c" dropped after the connect limit
    report = world.report()
    assert (report.dials, report.answers, report.abandons) == (3, 3, 1)
    assert report.talk_utilization == pytest.approx(100 / 7200, rel=1e-5)
    assert report.occupancy == pytest.approx(110 / 7200, rel=1e-5)
    assert report.mean_agent_wait_s == pytest.approx(7200 - 110, rel=1e-5)
    assert report.mean_answer_to_bridge_s == pytest.approx(0.5, abs=1e-5)
    first, second = report.series
    assert (first.dials, first.answers, first.abandons) == (3, 1, 0)
    assert (second.dials, second.answers, second.abandons, second.abandon_rate) == (0, 2, 1, 0.5)
    assert second.talk_utilization == pytest.approx(100 / 3600, rel=1e-5)
