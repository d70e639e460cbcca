"""A VICIdial-style ADAPT controller, implemented from its documented behaviour, for comparison benchmarks.

Every `adapt_interval_s` (15 s) the dial level becomes level * (1 + mean(ready agents - waiting calls) / agents),
clamped to [1, adapt_max_level]; it is halved when the day's drop (abandon) rate passes the target. Each tick
dials level * ready agents lines, minus the calls already ringing or waiting.
"""

from __future__ import annotations

from pacing.abandon_window import AbandonWindow
from pacing.model import CallAbandoned, CallAnswered, OutcomeEvent, Snapshot, capacity
from pacing.settings import PacingSettings


class AdaptPolicy:
    def __init__(self, settings: PacingSettings, *, abandon_window_s: float) -> None:
        self.settings = settings
        self.level = 1.0
        self.window = AbandonWindow(abandon_window_s)
        self._surplus_sum = 0.0
        self._samples = 0
        self._next_update: float | None = None

    def observe(self, event: OutcomeEvent) -> None:
        if isinstance(event, CallAnswered):
            self.window.answered(event.at)
        elif isinstance(event, CallAbandoned):
            self.window.abandoned(event.at)

    def decide(self, snapshot: Snapshot) -> int:
        s = self.settings
        cap = capacity(snapshot, s.max_lines_per_agent)
        self._surplus_sum += cap.ready_agents - snapshot.answered_waiting
        self._samples += 1
        if self._next_update is None:
            self._next_update = snapshot.now + s.adapt_interval_s
        elif snapshot.now >= self._next_update:
            self._update_level(snapshot.now, cap.available_agents)
            self._next_update = snapshot.now + s.adapt_interval_s
        if snapshot.abandon_cap_active:
            return cap.progressive_calls
        lines = int(round(self.level * cap.ready_agents)) - cap.lines_busy
        return max(0, min(lines, cap.max_new_calls))

    def _update_level(self, now: float, agents: int) -> None:
        mean_surplus = self._surplus_sum / max(self._samples, 1)
        self._surplus_sum, self._samples = 0.0, 0
        if agents > 0:
            self.level *= 1.0 + mean_surplus / agents
        self.window.expire(now)
        if self.window.rate > self.settings.target_abandon_rate:
            self.level /= 2.0
        self.level = min(max(self.level, 1.0), self.settings.adapt_max_level)
