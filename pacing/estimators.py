"""Online windowed estimators the predictive policy learns from.

- `AnswerRate`: share of dial outcomes answered, over a long window that restarts from a short one when the
  two disagree beyond a z-score (a mid-shift change is followed within the short window).
- `RingTimes`: empirical ring-time distributions of answered and of failed calls, for
  P(answered within t | still ringing after e).
- `DurationEstimator`: talk or wrap-up time, P(ends within t | lasted e so far): empirical survival where samples
  are plentiful, a lognormal fitted to the window (or a prior) where they are not.
"""

from __future__ import annotations

from collections import deque
from math import sqrt

import numpy as np
from scipy.special import ndtr


class AnswerRate:
    def __init__(self, short_window: int, long_window: int, change_z: float, min_samples: int) -> None:
        self._short: deque[bool] = deque(maxlen=short_window)
        self._long: deque[bool] = deque(maxlen=long_window)
        self._short_answers = 0
        self._long_answers = 0
        self._change_z = change_z
        self.min_samples = min_samples
        self.changes_detected = 0
        self._since_test = 0
        self._pending_direction = 0

    def observe(self, answered: bool) -> None:
        self._short_answers += self._push(self._short, answered)
        self._long_answers += self._push(self._long, answered)
        self._since_test += 1
        # tested once per fresh short window, and a change is taken only when two windows in a row agree:
        # outcomes resolve in bursts (a burst of dials rings out together), and a false alarm would replace the
        # estimate with an extreme sample
        if self._since_test >= self._short.maxlen:
            self._since_test = 0
            direction = self._change_direction()
            if direction and direction == self._pending_direction:
                self._long.clear()
                self._long.extend(self._short)
                self._long_answers = self._short_answers
                self.changes_detected += 1
                direction = 0
            self._pending_direction = direction

    @staticmethod
    def _push(window: deque[bool], answered: bool) -> int:
        leaving = window[0] if len(window) == window.maxlen else False
        window.append(answered)
        return int(answered) - int(leaving)

    def _change_direction(self) -> int:
        """+1 or -1 when the short window's rate is off the long one's by more than change_z spreads, else 0."""
        long_rate = (self._long_answers + 1) / (len(self._long) + 2)
        short_rate = self._short_answers / len(self._short)
        spread = sqrt(long_rate * (1 - long_rate) / len(self._short))
        if abs(short_rate - long_rate) <= self._change_z * spread:
            return 0
        return 1 if short_rate > long_rate else -1

    @property
    def samples(self) -> int:
        return len(self._long)

    @property
    def ready(self) -> bool:
        return len(self._long) >= self.min_samples

    @property
    def rate(self) -> float:
        """Answered share of the window, smoothed towards 1/2 by one pseudo-outcome each way."""
        return (self._long_answers + 1) / (len(self._long) + 2)


class _Window:
    """A bounded window of positive samples with a cached sorted copy."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._sorted: np.ndarray | None = None

    def add(self, value: float) -> None:
        self._values.append(max(0.0, float(value)))
        self._sorted = None

    def __len__(self) -> int:
        return len(self._values)

    @property
    def sorted(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(np.fromiter(self._values, float, len(self._values)))
        return self._sorted


def empirical_cdf(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    if sorted_values.size == 0:
        return np.zeros_like(x, dtype=float)
    return np.searchsorted(sorted_values, x, side="right") / sorted_values.size


class RingTimes:
    """Ring times of answered calls and of failed calls (busy, invalid, no answer ...)."""

    def __init__(self, window: int) -> None:
        self.answered = _Window(window)
        self.failed = _Window(window)

    def observe(self, ring_s: float, answered: bool) -> None:
        (self.answered if answered else self.failed).add(ring_s)

    def answered_cdf(self, x: np.ndarray) -> np.ndarray:
        return empirical_cdf(self.answered.sorted, x)

    def failed_cdf(self, x: np.ndarray) -> np.ndarray:
        return empirical_cdf(self.failed.sorted, x)

    def tables(self, elapsed_s: np.ndarray, within_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each elapsed e: P(answer rings in (e, e+t]) per t, P(answered ring > e), P(failed ring > e)."""
        e = np.asarray(elapsed_s, float)
        t = np.asarray(within_s, float)
        gained = self.answered_cdf(e[:, None] + t[None, :]) - self.answered_cdf(e)[:, None]
        return gained, 1 - self.answered_cdf(e), 1 - self.failed_cdf(e)


def answer_within(
    answer_rate: float, ring_times: RingTimes, elapsed_s: np.ndarray, within_s: np.ndarray
) -> np.ndarray:
    """P(answered in (e, e+t] | still ringing at e), shape (len(elapsed), len(within))."""
    return answer_probability(answer_rate, *ring_times.tables(elapsed_s, within_s))


def answer_probability(
    answer_rate: float, gained: np.ndarray, answered_later: np.ndarray, failed_later: np.ndarray
) -> np.ndarray:
    """Combine `RingTimes.tables` rows with the current answer rate (kept apart so the rate can change fast)."""
    ringing = answer_rate * answered_later + (1 - answer_rate) * failed_later
    scale = np.divide(answer_rate, ringing, out=np.zeros_like(ringing), where=ringing > 1e-12)
    return np.minimum(gained * scale[:, None], 1.0)


class DurationEstimator:
    """Talk or wrap-up durations; conditional end-within probabilities given the time already spent."""

    def __init__(self, window: int, min_samples: int, prior_mean_s: float, prior_sd_s: float) -> None:
        self._window = _Window(window)
        self.min_samples = min_samples
        self._prior = _lognormal_params(prior_mean_s, prior_sd_s)

    def observe(self, duration_s: float) -> None:
        self._window.add(duration_s)

    def __len__(self) -> int:
        return len(self._window)

    @property
    def mean(self) -> float:
        if len(self._window) < self.min_samples:
            mu, sigma = self._prior
            return float(np.exp(mu + sigma * sigma / 2))
        return float(self._window.sorted.mean())

    def lognormal(self) -> tuple[float, float]:
        """(mu, sigma) of the fitted lognormal, or of the prior below the minimum sample size."""
        values = self._window.sorted
        if values.size < self.min_samples:
            return self._prior
        logs = np.log(np.maximum(values, 1e-3))
        return float(logs.mean()), float(max(logs.std(), 1e-3))

    def end_within(self, elapsed_s: np.ndarray, within_s: np.ndarray) -> np.ndarray:
        """P(D <= e + t | D > e), shape (len(elapsed), len(within))."""
        e = np.asarray(elapsed_s, float)[:, None]
        t = np.asarray(within_s, float)[None, :]
        mu, sigma = self.lognormal()
        model = _lognormal_end_within(mu, sigma, e, e + t)
        values = self._window.sorted
        if values.size < self.min_samples:
            return model
        n = values.size
        beyond_e = n - np.searchsorted(values, e, side="right")
        beyond_et = n - np.searchsorted(values, e + t, side="right")
        with np.errstate(divide="ignore", invalid="ignore"):
            empirical = 1.0 - beyond_et / beyond_e
        use_empirical = beyond_e >= self.min_samples
        return np.where(use_empirical, np.nan_to_num(empirical, nan=1.0), model)


def _lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    sigma2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2), float(np.sqrt(sigma2))


def _lognormal_end_within(mu: float, sigma: float, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    def survival(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1.0 - ndtr((np.log(np.maximum(x, 0.0)) - mu) / sigma)

    s_start = survival(start)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 - survival(end) / s_start
    return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)
