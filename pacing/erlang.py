"""Erlang B, Erlang C and Erlang A (Palm's M/M/n+M, exponential patience), computed in log space.

Log space keeps a^n / n! finite for 1000 servers and more; the sums are `logsumexp` over log terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

_NEGLIGIBLE_LOG = -60.0  # a term e^-60 times the largest changes nothing in float64


def _check(servers: int, offered_load: float) -> None:
    if int(servers) != servers or servers < 1:
        raise ValueError(f"servers must be a positive integer, got {servers!r}")
    if not offered_load >= 0:
        raise ValueError(f"offered_load must be >= 0 erlangs, got {offered_load!r}")


def _log_poisson_terms(servers: int, offered_load: float) -> np.ndarray:
    """log(a^k / k!) for k = 0..servers."""
    k = np.arange(servers + 1, dtype=float)
    return k * np.log(offered_load) - gammaln(k + 1.0)


def log_erlang_b(servers: int, offered_load: float) -> float:
    _check(servers, offered_load)
    if offered_load == 0:
        return -np.inf
    terms = _log_poisson_terms(servers, offered_load)
    return float(terms[-1] - logsumexp(terms))


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of an M/M/n/n loss system offered `offered_load` erlangs."""
    return float(np.exp(log_erlang_b(servers, offered_load)))


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/n queue (1.0 when the load reaches the servers)."""
    _check(servers, offered_load)
    if offered_load >= servers:
        return 1.0
    if offered_load == 0:
        return 0.0
    log_b = log_erlang_b(servers, offered_load)
    blocking = np.exp(log_b)
    return float(np.exp(np.log(servers) + log_b - np.log(servers - offered_load * (1.0 - blocking))))


def erlang_c_wait_probability_within(
    servers: int, arrival_rate: float, service_rate: float, wait_s: float
) -> float:
    """P(wait <= wait_s) in M/M/n (the service level of call-centre tables)."""
    offered = arrival_rate / service_rate
    c = erlang_c(servers, offered)
    if offered >= servers:
        return 0.0
    return float(1.0 - c * np.exp(-(servers * service_rate - arrival_rate) * wait_s))


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady state of M/M/n+M: Poisson arrivals, exponential service and exponential patience."""

    wait_probability: float  # P(an arrival finds all servers busy)
    abandon_probability: float  # P(an arrival abandons before service)
    mean_queue: float  # expected number waiting
    utilisation: float  # busy servers / servers


def erlang_a(servers: int, arrival_rate: float, service_rate: float, patience_rate: float) -> ErlangA:
    """Palm's M/M/n+M. `patience_rate` is 1 / mean patience; 0 gives Erlang C (requires load < servers)."""
    offered = arrival_rate / service_rate if service_rate > 0 else np.inf
    _check(servers, offered)
    if patience_rate < 0:
        raise ValueError(f"patience_rate must be >= 0, got {patience_rate!r}")
    if arrival_rate == 0:
        return ErlangA(0.0, 0.0, 0.0, 0.0)
    if patience_rate == 0:
        if offered >= servers:
            raise ValueError("without abandonment the queue is unstable when the load reaches the servers")
        c = erlang_c(servers, offered)
        mean_queue = c * offered / (servers - offered)
        return ErlangA(c, 0.0, mean_queue, offered / servers)
    log_below = _log_poisson_terms(servers, offered)  # states 0..n
    log_queue = log_below[-1] + _log_queue_ratios(servers, arrival_rate, service_rate, patience_rate)
    log_total = np.logaddexp(logsumexp(log_below[:-1]), logsumexp(log_queue))
    queue_probabilities = np.exp(log_queue - log_total)  # states n, n+1, ...
    waiting = np.arange(queue_probabilities.size, dtype=float)
    mean_queue = float(queue_probabilities @ waiting)
    below = np.exp(log_below[:-1] - log_total)
    busy_servers = float(below @ np.arange(servers, dtype=float) + servers * queue_probabilities.sum())
    return ErlangA(
        wait_probability=float(queue_probabilities.sum()),
        abandon_probability=patience_rate * mean_queue / arrival_rate,
        mean_queue=mean_queue,
        utilisation=busy_servers / servers,
    )


def _log_queue_ratios(servers: int, arrival_rate: float, service_rate: float, patience_rate: float) -> np.ndarray:
    """log(pi_{n+j} / pi_n) for j = 0..J, extended until the terms are negligible."""
    length = 256
    while True:
        j = np.arange(1, length + 1, dtype=float)
        steps = np.log(arrival_rate) - np.log(servers * service_rate + j * patience_rate)
        cumulative = np.concatenate(([0.0], np.cumsum(steps)))
        if cumulative[-1] < cumulative.max() + _NEGLIGIBLE_LOG and steps[-1] < 0:
            return cumulative
        length *= 2
