"""What one engine process did, for `dialer demo`'s summary: gate refusals, agent time by state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dialer.core import events as ev

BUSY_STATES = ("talking", "wrap_up")
WORKING_STATES = ("ready", "talking", "wrap_up")


@dataclass(slots=True)
class RuntimeTally:
    gate_refusals: Counter = field(default_factory=Counter)
    gate_allowed: int = 0
    originated: int = 0
    agent_seconds: Counter = field(default_factory=Counter)  # state -> seconds, closed intervals only
    _agent_since: dict[str, tuple[str, float]] = field(default_factory=dict)

    def apply(self, item: ev.Event | ev.Command, now: float) -> None:
        match item:
            case ev.LeadRefused(reason=reason):
                self.gate_refusals[reason] += 1
            case ev.Originate():
                self.originated += 1
            case ev.LeadsGranted(leads=leads):
                self.gate_allowed += len(leads)
            case ev.AgentStateChanged(agent_id=agent_id, old=old, new=new, elapsed_s=elapsed):
                self.agent_seconds[old] += elapsed
                self._agent_since[agent_id] = (new, now)

    def agent_seconds_at(self, now: float) -> Counter:
        """Time by state including the states agents are in right now."""
        total = Counter(self.agent_seconds)
        for state, since in self._agent_since.values():
            total[state] += max(0.0, now - since)
        return total

    def occupancy(self, now: float) -> tuple[float, float, float]:
        """(occupancy 0..1, talking seconds, working seconds): busy time over time logged in and not paused."""
        seconds = self.agent_seconds_at(now)
        working = sum(seconds[s] for s in WORKING_STATES)
        busy = sum(seconds[s] for s in BUSY_STATES)
        return (busy / working if working else 0.0), seconds["talking"], working
