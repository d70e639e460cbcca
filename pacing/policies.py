"""Pacing policies: preview, progressive and predictive (abandonment-controlled, closed loop)."""

from __future__ import annotations

from math import inf

import numpy as np
from scipy.special import ndtr

from pacing.abandon_window import AbandonWindow
from pacing.estimators import AnswerRate, DurationEstimator, RingTimes, answer_probability
from pacing.model import (
    CallAbandoned,
    CallAnswered,
    CallFailed,
    OutcomeEvent,
    Snapshot,
    TalkEnded,
    WrapUpEnded,
    capacity,
)
from pacing.settings import PacingSettings

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_RING_STEP_S = 0.5
_TALK_STEP_S = 1.0


def next_call_abandonment(mean0: np.ndarray, var0: np.ndarray, new_call: np.ndarray, max_new: int) -> np.ndarray:
    """P(the (n+1)-th new call is answered and abandoned) for n = 0 .. max_new-1.

    mean0, var0: mean and variance of D(t_j) = answers by t_j - agents free by t_j + connect limit, over the grid,
    before any new call; new_call: P(a new call is answered by t_j). The (n+1)-th call answering in (t_j-1, t_j]
    finds no agent when D(t_j) >= 0 with the n before it (normal, continuity-corrected), D(t_j) lowered by the
    surplus answers expected dropped before t_j (the running maximum of E[max(D, 0)]).
    """
    n = np.arange(max_new, dtype=float)[:, None]
    mean = mean0 + n * new_call
    sd = np.sqrt(var0 + n * (new_call * (1 - new_call))) + 1e-9
    answered_in_step = np.diff(new_call, prepend=0.0)
    # surplus answers before t_j are dropped, not served: they no longer stand between the next call and an agent
    z = mean / sd
    expected_surplus = mean * ndtr(z) + sd * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    dropped_before = np.maximum.accumulate(expected_surplus, axis=1)[:, :-1]
    mean[:, 1:] -= dropped_before
    return (answered_in_step * ndtr((mean + 0.5) / sd)).sum(axis=1)


class ProgressivePolicy:
    """At most one call ringing or waiting per ready agent."""

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings

    def observe(self, event: OutcomeEvent) -> None:
        pass

    def decide(self, snapshot: Snapshot) -> int:
        return capacity(snapshot, self.settings.max_lines_per_agent).progressive_calls


class PreviewPolicy(ProgressivePolicy):
    """One call per ready agent who has none: the engine binds each launched call to the agent it was dialled
    for, so no call is ever answered without its agent (the decision equals progressive's)."""


class PredictivePolicy:
    """Launch the most calls for which the expected abandoned calls per answered call stay under the target.

    Each additional call must carry an expected abandonment of at most the model target times its answer
    probability: the Lagrangian form of "maximise answered calls subject to abandoned/answered <= target", which
    does not let calls already in flight lend their headroom to new ones.

    Over the look-ahead grid t_1..t_J (horizon_s in steps of horizon_step_s), D(t) = answers by t - agents free by
    t + connect limit. Answers come from calls already ringing (conditioned on their elapsed ring time), calls
    answered and waiting, and the new calls launched before the one weighed; agents come free from ready, wrap-up
    (its remaining time is known) and talk (conditioned on elapsed times). Each term is a Bernoulli and D is taken
    as normal with the summed means and variances. The next call is abandoned when it answers in (t_j-1, t_j] while
    D(t_j) >= 0: its expected abandonment is sum_j P(answers in step j) * P(D(t_j) >= 0). The model leaves out that
    earlier surplus answers are dropped rather than served, and the clustering of shortages, so its target is set
    by a closed loop on the regulatory window's measured abandon rate, which steers the window's total under
    `target_abandon_rate`.
    """

    def __init__(self, settings: PacingSettings, *, abandon_window_s: float, connect_limit_s: float = 2.0) -> None:
        s = settings
        self.settings = s
        self.connect_limit_s = connect_limit_s
        self.answer_rate = AnswerRate(
            s.answer_rate_short_window, s.answer_rate_long_window, s.answer_rate_change_z, s.cold_start_min_outcomes
        )
        self.ring_times = RingTimes(s.ring_time_window)
        self.talk = DurationEstimator(s.talk_time_window, s.duration_min_samples, s.prior_talk_mean_s, s.prior_talk_sd_s)
        self.wrap = DurationEstimator(
            s.wrap_time_window, s.duration_min_samples, max(s.prior_wrap_s, 0.1), max(s.prior_wrap_s, 0.1) * 0.2
        )
        self.window = AbandonWindow(abandon_window_s)
        steps = int(round(s.horizon_s / s.horizon_step_s))
        self._grid = s.horizon_step_s * np.arange(1, steps + 1, dtype=float)
        self._tables_at = -inf
        self._ring_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._talk_table = np.zeros((1, self._grid.size))
        self._wrap_table = np.zeros((1, self._grid.size))
        self.last_model_target = s.initial_marginal_factor * s.target_abandon_rate
        self._aim = s.aim_fraction * s.target_abandon_rate
        self._log_min, self._log_max = np.log(s.closed_loop_min_factor), np.log(s.closed_loop_max_factor)
        self._calibration = float(np.log(s.initial_marginal_factor))
        self._predicting = False

    # learning -------------------------------------------------------------------------------------------------
    def observe(self, event: OutcomeEvent) -> None:
        if isinstance(event, CallAnswered):
            self.answer_rate.observe(True)
            self.ring_times.observe(event.ring_s, True)
            self.window.answered(event.at)
            self._learn_calibration(self._aim)
        elif isinstance(event, CallFailed):
            self.answer_rate.observe(False)
            self.ring_times.observe(event.ring_s, False)
        elif isinstance(event, CallAbandoned):
            self.window.abandoned(event.at)
            self._learn_calibration(-1.0)
        elif isinstance(event, TalkEnded):
            self.talk.observe(event.talk_s)
        elif isinstance(event, WrapUpEnded):
            self.wrap.observe(event.wrap_s)

    def _learn_calibration(self, budget_change: float) -> None:
        """Integral part of the loop: the model's bias is learnt from every answer (+aim) and abandon (-1),
        in steps shrinking with the square root of the window's allowance (a stochastic approximation)."""
        if not self._predicting:  # answers paced progressively say nothing about the model's bias
            return
        s = self.settings
        step = s.closed_loop_integral_gain * budget_change / np.sqrt(self._aim * self.window.answers + 1.0)
        self._calibration = float(np.clip(self._calibration + step, self._log_min, self._log_max))

    @property
    def warmed_up(self) -> bool:
        return self.answer_rate.ready and len(self.talk) >= self.settings.cold_start_min_talks

    def _representative(self, snapshot: Snapshot) -> bool:
        """Early dial outcomes are biased: the first to resolve are the quick ones (busy, invalid, short rings).
        Predict only once the resolved outnumber twice the calls still ringing. (The first talks to end are the
        short ones too, but waiting for finished talks to outnumber twice those running kept large teams
        progressive for minutes; measured, the early over-dial this bias causes stays under target and the closed
        loop takes it up.)"""
        return self.answer_rate.samples >= 2 * len(snapshot.calls_in_flight)

    def model_target(self, now: float) -> float:
        """The marginal abandon ratio the model may accept for the next call.

        It is target * exp(calibration + gain * z). z is the window's unspent abandon budget (aim * answered -
        abandoned) over its Poisson spread: spent budget tightens, saved budget loosens, so the window's total is
        steered to the aim. The calibration (from `initial_marginal_factor`) learns the model's bias so that z
        need not stay away from 0 to hold it.
        """
        s = self.settings
        self.window.expire(now)
        allowed = self._aim * self.window.answers
        z = (allowed - self.window.abandons) / np.sqrt(allowed + 1.0)
        factor = np.exp(self._calibration + s.closed_loop_gain * z)
        return float(s.target_abandon_rate * np.clip(factor, s.closed_loop_min_factor, s.closed_loop_max_factor))

    # deciding -------------------------------------------------------------------------------------------------
    def decide(self, snapshot: Snapshot) -> int:
        s = self.settings
        cap = capacity(snapshot, s.max_lines_per_agent)
        progressive = cap.progressive_calls
        if (
            cap.max_new_calls == 0
            or snapshot.abandon_cap_active
            or cap.available_agents < max(s.progressive_below_agents, 1)
            or not self.warmed_up
            or not self._representative(snapshot)
        ):
            self._predicting = False
            return progressive
        self._predicting = True
        target = self.model_target(snapshot.now)
        self.last_model_target = target
        if target <= 0.0:
            return progressive
        if snapshot.now - self._tables_at >= s.model_refresh_s:
            self._rebuild_tables()
            self._tables_at = snapshot.now
        predicted = self._largest_safe_launch(snapshot, cap.ready_agents, cap.max_new_calls, target)
        return min(max(progressive, predicted), cap.max_new_calls)

    def _largest_safe_launch(self, snapshot: Snapshot, ready: int, max_new: int, target: float) -> int:
        free = self._agents_free_by(snapshot)  # (agents not ready, J)
        answers = self._answers_in_flight(snapshot)
        new_call = self._answers_by([0.0])[0]
        waiting = snapshot.answered_waiting
        mean0 = answers.sum(0) + waiting - ready - free.sum(0)
        var0 = (answers * (1 - answers)).sum(0) + (free * (1 - free)).sum(0)
        # beyond this many new calls the expected answers exceed every agent that could come free
        enough = int(np.ceil((6.0 * np.sqrt(var0[-1] + 1.0) - mean0[-1]) / max(new_call[-1], 1e-3)))
        max_new = min(max_new, max(enough, 1))
        affordable = next_call_abandonment(mean0, var0, new_call, max_new) <= target * new_call[-1]
        return max_new if affordable.all() else int(np.argmin(affordable))

    def _answers_in_flight(self, snapshot: Snapshot) -> np.ndarray:
        """P(answered by t_j) for each call in flight (rows), given how long it has rung."""
        return self._answers_by([c.ringing_elapsed_s for c in snapshot.calls_in_flight])

    def _answers_by(self, elapsed: list[float]) -> np.ndarray:
        assert self._ring_table is not None
        gained, answered_later, failed_later = self._ring_table
        if not elapsed:
            return np.zeros((0, self._grid.size))
        rows = np.minimum((np.asarray(elapsed) / _RING_STEP_S).astype(int), gained.shape[0] - 1)
        return answer_probability(self.answer_rate.rate, gained[rows], answered_later[rows], failed_later[rows])

    def _agents_free_by(self, snapshot: Snapshot) -> np.ndarray:
        talking = [a.state_elapsed_s for a in snapshot.agents if a.state == "talking"]
        wrapping = [a.state_elapsed_s for a in snapshot.agents if a.state == "wrap_up"]
        t_rows = np.minimum((np.asarray(talking) / _TALK_STEP_S).astype(int), self._talk_table.shape[0] - 1)
        w_rows = np.minimum((np.asarray(wrapping) / _RING_STEP_S).astype(int), self._wrap_table.shape[0] - 1)
        return np.concatenate((self._talk_table[t_rows], self._wrap_table[w_rows]))

    def _rebuild_tables(self) -> None:
        within = self._grid + self.connect_limit_s
        ring_max = max(float(self.ring_times.failed.sorted[-1]) if len(self.ring_times.failed) else 0.0, 60.0)
        ring_elapsed = np.arange(0.0, ring_max + _RING_STEP_S, _RING_STEP_S)
        self._ring_table = self.ring_times.tables(ring_elapsed, self._grid)
        wrap_mean = self.wrap.mean
        talk_max = min(3600.0, max(600.0, 3 * self.talk.mean))
        talk_elapsed = np.arange(0.0, talk_max + _TALK_STEP_S, _TALK_STEP_S)
        talk_within = within - wrap_mean
        table = self.talk.end_within(talk_elapsed, np.maximum(talk_within, 0.0))
        self._talk_table = np.where(talk_within[None, :] > 0, table, 0.0)
        wrap_elapsed = np.arange(0.0, 4 * wrap_mean + 60.0, _RING_STEP_S)
        self._wrap_table = self.wrap.end_within(wrap_elapsed, within)
