import math
from fractions import Fraction
from math import factorial

import pytest
from scipy.optimize import brentq

from pacing.erlang import erlang_a, erlang_b, erlang_c, erlang_c_wait_probability_within

# Offered load (erlangs) giving 1 % blocking, as printed in published Erlang B tables
# (e.g. erlang.com: 15 lines at 1 % carry 8.108 E).
ERLANG_B_ONE_PERCENT = [
    (1, 0.0101), (2, 0.1526), (5, 1.3608), (10, 4.4612), (15, 8.108), (20, 12.031),
    (50, 37.901), (100, 84.064), (200, 179.7), (500, 474.0), (1000, 971.2),
]


@pytest.mark.parametrize(("servers", "table_load"), ERLANG_B_ONE_PERCENT)
def test_erlang_b_matches_published_one_percent_table(servers, table_load):
    load = brentq(lambda a: erlang_b(servers, a) - 0.01, 1e-9, 2 * servers + 5, xtol=1e-10)
    digits = len(str(table_load).split(".")[1])
    assert round(load, digits) == pytest.approx(table_load, abs=10 ** -digits / 2 + 1e-12)


def _erlang_b_exact(servers: int, load: Fraction) -> Fraction:
    terms = [load**k / factorial(k) for k in range(servers + 1)]
    return terms[-1] / sum(terms)


@pytest.mark.parametrize(("servers", "load"), [(1, 1), (3, 2), (7, 5), (12, 9), (30, 27)])
def test_erlang_b_and_c_match_exact_rational_summation(servers, load):
    exact_b = _erlang_b_exact(servers, Fraction(load))
    exact_c = servers * exact_b / (servers - load * (1 - exact_b))
    assert erlang_b(servers, load) == pytest.approx(float(exact_b), rel=1e-12)
    assert erlang_c(servers, load) == pytest.approx(float(exact_c), rel=1e-12)


def test_erlang_b_agrees_with_the_classic_recursion_up_to_1000_servers():
    for load in (50.0, 500.0, 950.0, 1100.0):
        blocking = 1.0
        for k in range(1, 1001):
            blocking = load * blocking / (k + load * blocking)
            if k in (1, 10, 100, 1000):
                assert erlang_b(k, load) == pytest.approx(blocking, rel=1e-10)


def test_erlang_c_published_call_centre_example():
    # 10 erlangs offered (e.g. 100 calls per 30 min, 180 s handling): P(wait) with 11 and 12 agents
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-5)
    assert erlang_c(12, 10.0) == pytest.approx(0.4494, abs=5e-5)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)
    assert erlang_c(5, 5.0) == 1.0


def test_erlang_c_service_level():
    # P(wait <= 20 s) with 10 erlangs (arrival 1/18 per s, 180 s handling) and 12 agents
    level = erlang_c_wait_probability_within(12, 1 / 18, 1 / 180, 20.0)
    assert level == pytest.approx(1 - erlang_c(12, 10.0) * math.exp(-(12 / 180 - 1 / 18) * 20), rel=1e-12)


def _erlang_a_direct(n: int, lam: float, mu: float, theta: float, depth: int = 400):
    weights = []
    for k in range(n + depth):
        if k <= n:
            w = (lam / mu) ** k / factorial(k)
        else:
            w = weights[-1] * lam / (n * mu + (k - n) * theta)
        weights.append(w)
    total = sum(weights)
    wait = sum(weights[n:]) / total
    queue = sum((k - n) * w for k, w in enumerate(weights) if k > n) / total
    return wait, theta * queue / lam


@pytest.mark.parametrize(("n", "lam", "mu", "theta"), [(1, 0.8, 1.0, 0.5), (5, 6.0, 1.0, 0.2), (20, 25.0, 1.0, 2.0)])
def test_erlang_a_matches_direct_summation(n, lam, mu, theta):
    wait, abandon = _erlang_a_direct(n, lam, mu, theta)
    result = erlang_a(n, lam, mu, theta)
    assert result.wait_probability == pytest.approx(wait, rel=1e-10)
    assert result.abandon_probability == pytest.approx(abandon, rel=1e-10)


def test_erlang_a_limits():
    # patience -> infinity-like small: Erlang C; patience rate == service rate: M/M/infinity (Poisson states)
    assert erlang_a(50, 45.0, 1.0, 1e-12).wait_probability == pytest.approx(erlang_c(50, 45.0), rel=1e-6)
    from scipy.stats import poisson

    result = erlang_a(1000, 990.0, 1.0, 1.0)
    assert result.wait_probability == pytest.approx(poisson.sf(999, 990.0), rel=1e-9)
    # overload is stable with abandonment: arrivals beyond capacity abandon
    overloaded = erlang_a(100, 150.0, 1.0, 0.5)
    assert overloaded.abandon_probability == pytest.approx(1 - 100 * overloaded.utilisation / 150.0, rel=1e-9)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="servers"):
        erlang_b(0, 1.0)
    with pytest.raises(ValueError, match="offered_load"):
        erlang_c(3, -1.0)
