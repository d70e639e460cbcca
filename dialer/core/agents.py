"""Agents of one node: states, time in state, and the longest-idle ready agent."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from dialer.core import pacer

AGENT_STATES = ("logged_out", "connecting", "ready", "talking", "wrap_up", "paused")
PACER_VISIBLE_STATES = frozenset({"ready", "talking", "wrap_up", "paused"})


@dataclass(slots=True)
class AgentRecord:
    agent_id: str
    campaigns: frozenset[str]
    state: str
    since: float
    call_id: str | None = None  # the bridged call while talking
    last_call_id: str | None = None  # the call the agent may still dispose
    last_campaign: str | None = None
    last_lead_id: int | None = None
    pause_pending: bool = False
    logout_pending: bool = False


class AgentPool:
    def __init__(self, campaigns_of: Callable[[str], frozenset[str]]) -> None:
        self._campaigns_of = campaigns_of
        self._agents: dict[str, AgentRecord] = {}
        self._by_campaign: dict[str, list[AgentRecord]] = {}
        # Ready agents in the order they became ready: the first one of a campaign is its longest idle.
        self._ready: OrderedDict[str, AgentRecord] = OrderedDict()

    def __getitem__(self, agent_id: str) -> AgentRecord:
        return self._agents[agent_id]

    def get(self, agent_id: str | None) -> AgentRecord | None:
        return self._agents.get(agent_id) if agent_id is not None else None

    def ensure(self, agent_id: str, now: float) -> AgentRecord:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = AgentRecord(agent_id, self._campaigns_of(agent_id), "logged_out", now)
            self._agents[agent_id] = agent
            for campaign in agent.campaigns:
                self._by_campaign.setdefault(campaign, []).append(agent)
        return agent

    def move(self, agent: AgentRecord, state: str, now: float) -> tuple[str, float]:
        """Set the agent's state; returns the old state and the seconds spent in it."""
        old, elapsed = agent.state, now - agent.since
        if old == "ready":
            del self._ready[agent.agent_id]
        if state == "ready":
            self._ready[agent.agent_id] = agent
        agent.state, agent.since = state, now
        return old, elapsed

    def longest_idle_ready(self, campaign: str) -> AgentRecord | None:
        for agent in self._ready.values():
            if campaign in agent.campaigns:
                return agent
        return None

    def views(self, campaign: str, now: float) -> tuple[pacer.AgentView, ...]:
        view, visible = pacer.AgentView, PACER_VISIBLE_STATES
        return tuple([view(a.agent_id, a.state, now - a.since)
                      for a in self._by_campaign.get(campaign, ()) if a.state in visible])

    def ready_count(self, campaign: str) -> int:
        return sum(1 for a in self._ready.values() if campaign in a.campaigns)

    def count_by_state(self) -> dict[str, int]:
        counts = Counter(a.state for a in self._agents.values())
        return {state: counts.get(state, 0) for state in AGENT_STATES}

    def all(self) -> list[AgentRecord]:
        return list(self._agents.values())
