"""The runtime's side of calls: the telephony call behind each core call id, agent legs, and event mapping."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialer.core import events as ev


def core_event(call_id: str, event: object) -> ev.Event | None:
    """A telephony call event (the switch's or the simulated backend's) as the core's event for ``call_id``."""
    kind = type(event).__name__
    if kind in ("Ringing", "EarlyMedia"):
        return ev.Ringing(call_id)
    if kind == "Answered":
        return ev.Answered(call_id)
    if kind == "Failed":
        outcome = getattr(event, "outcome", "failed")
        return ev.Failed(call_id, getattr(event, "sip_code", None),
                         outcome if outcome in ev.FAILURE_OUTCOMES else "failed")
    if kind == "Ended":
        by = getattr(event, "by", "remote")
        return ev.Ended(call_id, by if by in ("local", "remote") else "remote", getattr(event, "reason", "normal"))
    return None


@dataclass(slots=True)
class CallTable:
    _customers: dict[str, object] = field(default_factory=dict)  # core call id -> telephony call
    _agents: dict[str, object] = field(default_factory=dict)  # agent id -> agent's phone leg
    answered_at: dict[str, float] = field(default_factory=dict)  # core clock
    hangup_by: dict[str, str] = field(default_factory=dict)
    bridged: set[str] = field(default_factory=set)

    def add_customer(self, call_id: str, call: object) -> None:
        self._customers[call_id] = call

    def customer(self, call_id: str):
        return self._customers.get(call_id)

    def customer_calls(self) -> list:
        return list(self._customers.values())

    def forget(self, call_id: str) -> None:
        self._customers.pop(call_id, None)
        self.answered_at.pop(call_id, None)
        self.hangup_by.pop(call_id, None)
        self.bridged.discard(call_id)

    def add_agent_leg(self, agent_id: str, leg: object) -> None:
        self._agents[agent_id] = leg

    def agent_leg(self, agent_id: str):
        return self._agents.get(agent_id)

    def agent_legs(self) -> list:
        return list(self._agents.values())

    def drop_agent_leg(self, agent_id: str, leg: object) -> None:
        if self._agents.get(agent_id) is leg:
            del self._agents[agent_id]
