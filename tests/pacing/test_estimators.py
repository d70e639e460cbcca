import numpy as np
import pytest
from scipy.stats import lognorm

from pacing.estimators import AnswerRate, DurationEstimator, RingTimes, answer_within


def _feed(estimator: AnswerRate, rng, rate: float, count: int) -> None:
    for answered in rng.random(count) < rate:
        estimator.observe(bool(answered))


def test_answer_rate_needs_its_minimum_sample_then_converges():
    rng = np.random.default_rng(1)
    estimator = AnswerRate(short_window=100, long_window=2000, change_z=4.0, min_samples=50)
    _feed(estimator, rng, 0.3, 49)
    assert not estimator.ready
    _feed(estimator, rng, 0.3, 3000)
    assert estimator.ready
    assert estimator.rate == pytest.approx(0.3, abs=0.03)
    assert estimator.changes_detected == 0


def test_answer_rate_follows_a_mid_shift_drop_within_a_few_hundred_outcomes():
    rng = np.random.default_rng(2)
    estimator = AnswerRate(short_window=100, long_window=2000, change_z=3.0, min_samples=50)
    _feed(estimator, rng, 0.30, 2000)
    _feed(estimator, rng, 0.10, 400)
    assert estimator.changes_detected >= 1
    assert estimator.rate == pytest.approx(0.10, abs=0.04)
    # without the detector the 2000-outcome window would still say about 0.27
    slow = AnswerRate(short_window=100, long_window=2000, change_z=1e9, min_samples=50)
    rng = np.random.default_rng(2)
    _feed(slow, rng, 0.30, 2000)
    _feed(slow, rng, 0.10, 400)
    assert slow.rate > 0.24


def test_answer_within_matches_the_analytic_conditional_probability():
    rng = np.random.default_rng(3)
    ring = RingTimes(window=200_000)
    for value in rng.uniform(0, 20, 100_000):
        ring.observe(float(value), answered=True)
    for _ in range(100_000):
        ring.observe(25.0, answered=False)
    elapsed = np.array([0.0, 5.0, 10.0])
    within = np.array([2.0, 5.0, 10.0])
    got = answer_within(0.5, ring, elapsed, within)
    e, t = elapsed[:, None], within[None, :]
    expected = 0.5 * (t / 20) / (0.5 * (1 - e / 20) + 0.5)
    assert got == pytest.approx(expected, abs=0.01)
    # past the last answered ring time nothing more can be answered
    assert answer_within(0.5, ring, np.array([21.0]), within) == pytest.approx(np.zeros((1, 3)))


def test_duration_conditional_end_probability_matches_lognormal():
    rng = np.random.default_rng(4)
    mu, sigma = np.log(150.0), 0.6
    estimator = DurationEstimator(window=50_000, min_samples=20, prior_mean_s=60, prior_sd_s=10)
    for value in rng.lognormal(mu, sigma, 50_000):
        estimator.observe(float(value))
    elapsed = np.array([0.0, 100.0, 300.0, 2000.0])  # 2000 s is far in the tail: the fitted lognormal answers
    within = np.array([10.0, 60.0])
    dist = lognorm(s=sigma, scale=np.exp(mu))
    e, t = elapsed[:, None], within[None, :]
    expected = 1 - dist.sf(e + t) / dist.sf(e)
    assert estimator.end_within(elapsed, within) == pytest.approx(expected, abs=0.02)


def test_duration_uses_prior_below_minimum_samples():
    estimator = DurationEstimator(window=100, min_samples=20, prior_mean_s=100, prior_sd_s=50)
    for _ in range(19):
        estimator.observe(5.0)
    assert estimator.mean == pytest.approx(100.0, rel=1e-6)
    estimator.observe(5.0)
    assert estimator.mean == pytest.approx(5.0)
    # a constant 5 s: over by 5.5 s, not by 4 s, whatever has elapsed
    got = estimator.end_within(np.array([0.0, 3.0]), np.array([1.0, 2.5]))
    np.testing.assert_allclose(got, [[0.0, 0.0], [0.0, 1.0]])
