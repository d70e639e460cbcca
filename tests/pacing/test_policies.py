import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacing import (
    AgentView,
    CallAbandoned,
    CallAnswered,
    CallFailed,
    CallView,
    PacingSettings,
    Snapshot,
    TalkEnded,
    WrapUpEnded,
    make_policy,
)
from pacing.adapt import AdaptPolicy
from pacing.model import capacity
from pacing.policies import PredictivePolicy, next_call_abandonment

MODES = ("preview", "progressive", "predictive", "adapt")


def warmed_predictive(settings: PacingSettings | None = None, seed: int = 0) -> PredictivePolicy:
    """A predictive policy that has seen a shift's worth of outcomes (30 % answered, ~12 s rings, 180 s talks)."""
    policy = make_policy(settings or PacingSettings(), abandon_window_s=86400.0)
    assert isinstance(policy, PredictivePolicy)
    rng = np.random.default_rng(seed)
    for i in range(600):
        if rng.random() < 0.3:
            policy.observe(CallAnswered(at=i, ring_s=float(rng.lognormal(2.37, 0.47))))
        else:
            policy.observe(CallFailed(at=i, ring_s=float(rng.choice([1.5, 3.0, 25.0])), outcome="no_answer"))
    for _ in range(200):
        policy.observe(TalkEnded(at=600.0, talk_s=float(rng.lognormal(5.0, 0.6))))
        policy.observe(WrapUpEnded(at=600.0, wrap_s=10.0))
    assert policy.warmed_up
    return policy


def snapshot(ready=0, talking=(), wrapping=(), paused=0, ringing=(), waiting=0, trunk=1000, cap=False, now=1000.0):
    agents = [AgentView(f"r{i}", "ready", 5.0) for i in range(ready)]
    agents += [AgentView(f"t{i}", "talking", e) for i, e in enumerate(talking)]
    agents += [AgentView(f"w{i}", "wrap_up", e) for i, e in enumerate(wrapping)]
    agents += [AgentView(f"p{i}", "paused", 60.0) for i in range(paused)]
    calls = tuple(CallView(f"c{i}", e) for i, e in enumerate(ringing))
    return Snapshot(now, tuple(agents), calls, waiting, trunk, cap)


def test_progressive_counts_calls_already_ringing_and_waiting():
    policy = make_policy(PacingSettings(mode="progressive"), abandon_window_s=86400)
    assert policy.decide(snapshot(ready=3)) == 3
    assert policy.decide(snapshot(ready=3, ringing=(4.0,))) == 2
    assert policy.decide(snapshot(ready=3, ringing=(4.0, 1.0), waiting=1)) == 0
    assert policy.decide(snapshot(ready=0, talking=(100.0,) * 10)) == 0


@pytest.mark.parametrize("mode", MODES)
def test_paused_agents_never_count(mode):
    policy = warmed_predictive() if mode == "predictive" else make_policy(PacingSettings(mode=mode), abandon_window_s=86400)
    assert policy.decide(snapshot(paused=30)) == 0
    assert policy.decide(snapshot(paused=30, ready=1)) <= 3  # max_lines_per_agent counts the one available agent


def test_predictive_overdials_when_agents_are_about_to_free():
    policy = warmed_predictive()
    busy = snapshot(ready=2, talking=(170.0,) * 14, wrapping=(6.0, 8.0, 3.0, 9.0))
    progressive = capacity(busy, 3.0).progressive_calls
    assert progressive == 2
    assert policy.decide(busy) > progressive + 4


def test_predictive_is_progressive_during_cold_start_and_below_the_agent_floor():
    cold = make_policy(PacingSettings(), abandon_window_s=86400)
    busy = snapshot(ready=2, talking=(170.0,) * 14, wrapping=(6.0, 8.0, 3.0, 9.0))
    assert cold.decide(busy) == 2
    floor = warmed_predictive(PacingSettings(progressive_below_agents=30))
    assert floor.decide(busy) == 2


def test_abandonment_cap_forces_progressive():
    policy = warmed_predictive()
    busy = snapshot(ready=2, talking=(170.0,) * 14, wrapping=(6.0, 8.0, 3.0, 9.0), cap=True)
    assert policy.decide(busy) == 2
    adapt = AdaptPolicy(PacingSettings(mode="adapt"), abandon_window_s=86400)
    adapt.level = 3.0
    assert adapt.decide(busy) == 2


def test_trunk_capacity_and_lines_per_agent_cap_the_launch():
    policy = warmed_predictive()
    assert policy.decide(snapshot(ready=2, talking=(170.0,) * 14, wrapping=(6.0,) * 4, trunk=3)) == 3
    about_to_free = snapshot(ready=4, talking=(170.0,) * 2, wrapping=(9.0,) * 3)
    assert policy.decide(about_to_free) > 9
    capped = warmed_predictive(PacingSettings(max_lines_per_agent=1.0))
    assert capped.decide(about_to_free) == 9  # 9 available agents, one line each


def test_closed_loop_tightens_after_abandons_and_relaxes_after_clean_answers():
    policy = warmed_predictive()
    neutral = policy.model_target(1000.0)
    busy = snapshot(ready=2, talking=(170.0,) * 14, wrapping=(6.0, 8.0, 3.0, 9.0))
    launched_neutral = policy.decide(busy)
    for _ in range(30):
        policy.observe(CallAbandoned(at=1000.0))
    assert policy.model_target(1000.0) < neutral
    assert policy.decide(busy) < launched_neutral
    relaxed = warmed_predictive()
    for i in range(3000):
        relaxed.observe(CallAnswered(at=1000.0 + i * 0.01, ring_s=10.0))
    assert relaxed.model_target(1100.0) > neutral
    # outside the regulatory window the abandons no longer count
    short = warmed_predictive()
    short.window.window_s = 3600.0
    short.decide(busy)  # predicting: from now on abandons also teach the calibration
    for _ in range(10):
        short.observe(CallAbandoned(at=700.0))
    assert short.model_target(800.0) < neutral
    # the window forgets them (only the learnt calibration, tightened by them, remains)
    target = PacingSettings().target_abandon_rate
    learnt = max(np.exp(short._calibration), PacingSettings().closed_loop_min_factor) * target
    assert learnt < PacingSettings().initial_marginal_factor * target
    assert short.model_target(800.0) < learnt
    assert short.model_target(700.0 + 3600.0 + 120.0) == pytest.approx(learnt)


def test_adapt_raises_level_when_agents_wait_and_halves_it_over_the_drop_target():
    policy = AdaptPolicy(PacingSettings(mode="adapt"), abandon_window_s=86400)
    for t in range(0, 31):
        launched = policy.decide(snapshot(ready=5, talking=(50.0,) * 5, now=float(t)))
    assert policy.level == pytest.approx(2.25)  # 1 * 1.5 twice, each 15 s with half the agents ready
    assert launched == round(2.25 * 5)
    for i in range(10):
        policy.observe(CallAnswered(at=40.0, ring_s=10.0))
    policy.observe(CallAbandoned(at=40.0))  # 10 % dropped today, over the 3 % target
    for t in range(31, 46):
        policy.decide(snapshot(ready=0, talking=(50.0,) * 10, now=float(t)))
    assert policy.level == pytest.approx(2.25 / 2)


agent_state = st.sampled_from(["ready", "talking", "wrap_up", "paused"])
snapshots = st.builds(
    lambda agents, rings, waiting, trunk, cap: Snapshot(
        1000.0,
        tuple(AgentView(f"a{i}", s, e) for i, (s, e) in enumerate(agents)),
        tuple(CallView(f"c{i}", e) for i, e in enumerate(rings)),
        waiting,
        trunk,
        cap,
    ),
    st.lists(st.tuples(agent_state, st.floats(0, 4000)), max_size=60),
    st.lists(st.floats(0, 60), max_size=120),
    st.integers(0, 10),
    st.integers(0, 400),
    st.booleans(),
)
line_caps = st.sampled_from([1.0, 1.5, 2.0, 3.0, 5.0])
POLICIES = {mode: {} for mode in MODES}


def _policy(mode: str, lines: float):
    cache = POLICIES[mode]
    if lines not in cache:
        settings = PacingSettings(mode=mode, max_lines_per_agent=lines)
        cache[lines] = warmed_predictive(settings) if mode == "predictive" else make_policy(settings, abandon_window_s=86400)
    return cache[lines]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots, mode=st.sampled_from(MODES), lines=line_caps)
def test_never_negative_never_over_the_caps_progressive_under_the_abandon_cap(snap, mode, lines):
    launched = _policy(mode, lines).decide(snap)
    available = sum(1 for a in snap.agents if a.state != "paused")
    ready = sum(1 for a in snap.agents if a.state == "ready")
    busy_lines = len(snap.calls_in_flight) + snap.answered_waiting
    assert isinstance(launched, int) and launched >= 0
    assert launched <= snap.free_trunk_channels
    assert busy_lines + launched <= max(int(lines * available + 1e-9), busy_lines)
    if snap.abandon_cap_active or available == 0:
        assert launched == max(0, min(ready - busy_lines, snap.free_trunk_channels, int(lines * available + 1e-9) - busy_lines))


def test_next_call_abandonment_matches_a_monte_carlo_of_the_same_bernoullis():
    """The normal approximation of P(the next call's answer finds no agent) against sampling every call and agent."""
    rng = np.random.default_rng(7)
    grid = np.arange(1, 11)
    ringing = np.clip(0.03 * grid[None, :] * rng.uniform(0.3, 1.0, (30, 1)), 0, 0.35)  # P(answered by t_j), 30 calls
    freeing = np.clip(0.02 * grid[None, :] * rng.uniform(0.2, 1.0, (20, 1)), 0, 1)  # P(free by t_j), 20 agents
    new_call = np.clip(0.035 * grid, 0, 0.3)
    ready, max_new = 2, 6
    mean0 = ringing.sum(0) - ready - freeing.sum(0)
    var0 = (ringing * (1 - ringing)).sum(0) + (freeing * (1 - freeing)).sum(0)
    model = next_call_abandonment(mean0, var0, new_call, max_new)

    samples = 40_000
    answers = (rng.random((samples, 30, 1)) < ringing[None]).sum(1)  # cumulative counts by t_j
    frees = (rng.random((samples, 20, 1)) < freeing[None]).sum(1)
    new_u = rng.random((samples, max_new + 1, 1))
    new_by = new_u < new_call[None, None, :]  # (samples, call, j): answered by t_j
    base = answers - ready - frees
    for k in range(max_new):
        d = base + new_by[:, :k].sum(1)  # D(t_j) with the k calls launched before
        answered = new_by[:, k]
        first = np.argmax(answered, axis=1)  # the step the weighed call answers in
        # it finds no agent when D at its answer is at least every earlier surplus (those answers were dropped)
        dropped_before = np.maximum.accumulate(np.maximum(d, 0), axis=1)
        dropped_before = np.concatenate((np.zeros((samples, 1)), dropped_before[:, :-1]), axis=1)
        rows = np.arange(samples)
        lost = answered.any(1) & (d[rows, first] >= dropped_before[rows, first])
        assert model[k] == pytest.approx(lost.mean(), rel=0.15)
    assert np.all(np.diff(model) > 0)  # each further call is riskier than the one before
