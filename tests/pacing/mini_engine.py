"""A small test-only controller: drives a pacing policy against the SimulatedWorld the way the engine core does
(longest-idle agent first, connect limit, wrap-up, breaks). Not product code: the real engine is dialer.core."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from math import inf

from pacing import make_policy
from pacing.model import (
    AgentView,
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallFailed,
    CallLaunched,
    CallView,
    Snapshot,
    TalkEnded,
    WrapUpEnded,
)
from pacing.settings import PacingSettings
from pacing.simulator import (
    AgentBreakEnded,
    AgentBreakStarted,
    CallerHungUp,
    Scenario,
    SimulatedWorld,
    SimulationReport,
    TalkFinished,
)
from pacing.simulator import CallAnswered as WorldAnswered
from pacing.simulator import CallFailed as WorldFailed


class MiniEngine:
    def __init__(
        self,
        scenario: Scenario,
        settings: PacingSettings,
        seed: int,
        *,
        abandon_cap_active: Callable[[float], bool] = lambda now: False,
        free_trunk_channels: int = 1_000_000,
        policy=None,
    ) -> None:
        self.world = SimulatedWorld(scenario, seed)
        self.scenario = scenario
        self.settings = settings
        self.policy = policy or make_policy(
            settings, abandon_window_s=86400.0, seed=seed, connect_limit_s=scenario.connect_limit_s
        )
        self.abandon_cap_active = abandon_cap_active
        self.free_trunk_channels = free_trunk_channels
        self.state = {a: "ready" for a in self.world.agent_ids}
        self.since = {a: 0.0 for a in self.world.agent_ids}
        self.wants_break: set[str] = set()
        self.ringing: dict[str, float] = {}
        self.waiting: dict[str, float] = {}
        self.wrap_ends: list[tuple[float, str]] = []
        self.decisions: list[tuple[Snapshot, int]] = []
        self.record_decisions = False
        self._serial = 0

    def run(self) -> SimulationReport:
        end = self.world.duration_s
        next_tick = 0.0
        interval = self.settings.interval_s
        limit = self.scenario.connect_limit_s
        while True:
            world_next = self.world.next_event_time()
            candidates = (
                next_tick if next_tick < end else inf,
                world_next if world_next is not None and world_next < end else inf,
                self.wrap_ends[0][0] if self.wrap_ends else inf,
                next(iter(self.waiting.values())) + limit if self.waiting else inf,
            )
            now = min(candidates)
            if now == inf or now >= end:
                break
            for event in self.world.pop_events(now):
                self._on_world(event)
            while self.wrap_ends and self.wrap_ends[0][0] <= now:
                at, agent = heapq.heappop(self.wrap_ends)
                self.policy.observe(WrapUpEnded(at, at - self.since[agent]))
                self._set(agent, "paused" if agent in self.wants_break else "ready", at)
                self.wants_break.discard(agent)
            for call_id, answered_at in list(self.waiting.items()):
                if answered_at + limit <= now + 1e-9:
                    del self.waiting[call_id]
                    self.world.drop(call_id, now)
                    self.policy.observe(CallAbandoned(now))
            self._connect_waiting(now)
            if now >= next_tick:
                self._tick(now)
                next_tick += interval
        return self.world.report()

    def _set(self, agent: str, state: str, at: float) -> None:
        self.state[agent], self.since[agent] = state, at

    def _longest_idle(self) -> str | None:
        ready = [a for a, s in self.state.items() if s == "ready"]
        return min(ready, key=self.since.__getitem__) if ready else None

    def _connect(self, call_id: str, answered_at: float, now: float) -> bool:
        agent = self._longest_idle()
        if agent is None:
            return False
        self.world.connect(call_id, agent, now)
        self._set(agent, "talking", now)
        self.policy.observe(CallConnected(now, now - answered_at))
        return True

    def _connect_waiting(self, now: float) -> None:
        for call_id, answered_at in list(self.waiting.items()):
            if not self._connect(call_id, answered_at, now):
                break
            del self.waiting[call_id]

    def _on_world(self, event) -> None:
        if isinstance(event, WorldAnswered):
            dialled = self.ringing.pop(event.call_id)
            self.policy.observe(CallAnswered(event.at, event.at - dialled))
            if not self._connect(event.call_id, event.at, event.at):
                self.waiting[event.call_id] = event.at
        elif isinstance(event, WorldFailed):
            dialled = self.ringing.pop(event.call_id)
            self.policy.observe(CallFailed(event.at, event.at - dialled, event.outcome))
        elif isinstance(event, CallerHungUp):
            self.waiting.pop(event.call_id, None)
            self.policy.observe(CallAbandoned(event.at))
        elif isinstance(event, TalkFinished):
            self.policy.observe(TalkEnded(event.at, event.at - self.since[event.agent_id]))
            self._set(event.agent_id, "wrap_up", event.at)
            heapq.heappush(self.wrap_ends, (event.at + self.scenario.wrap_up_s, event.agent_id))
        elif isinstance(event, AgentBreakStarted):
            if self.state[event.agent_id] == "ready":
                self._set(event.agent_id, "paused", event.at)
            else:
                self.wants_break.add(event.agent_id)
        elif isinstance(event, AgentBreakEnded):
            self.wants_break.discard(event.agent_id)
            if self.state[event.agent_id] == "paused":
                self._set(event.agent_id, "ready", event.at)

    def _tick(self, now: float) -> None:
        snapshot = Snapshot(
            now=now,
            agents=tuple(AgentView(a, s, now - self.since[a]) for a, s in self.state.items()),  # type: ignore[arg-type]
            calls_in_flight=tuple(CallView(c, now - t) for c, t in self.ringing.items()),
            answered_waiting=len(self.waiting),
            free_trunk_channels=max(0, self.free_trunk_channels - len(self.ringing) - len(self.waiting)),
            abandon_cap_active=self.abandon_cap_active(now),
        )
        launch = self.policy.decide(snapshot)
        if self.record_decisions:
            self.decisions.append((snapshot, launch))
        for _ in range(launch):
            self._serial += 1
            call_id = f"c{self._serial}"
            self.world.dial(call_id, now)
            self.ringing[call_id] = now
            self.policy.observe(CallLaunched(now))
