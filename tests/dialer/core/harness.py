"""A tiny driver for EngineCore in tests: a virtual clock, a scripted pacing policy, and helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialer.config import CampaignSettings, RetrySettings
from dialer.core import EngineCore
from dialer.core import events as ev


@dataclass
class ScriptedPolicy:
    """Launches ``per_tick`` calls per decision (capped by free channels); records what it observes."""

    per_tick: int = 0
    observed: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)

    def observe(self, event) -> None:
        self.observed.append(event)

    def decide(self, snapshot) -> int:
        self.snapshots.append(snapshot)
        return self.per_tick

    def observed_types(self) -> list[str]:
        return [type(e).__name__ for e in self.observed]


def campaign(name: str = "c1", **overrides) -> CampaignSettings:
    values = dict(name=name, caller_id="+14155550100", trunks=("t1",), connect_limit_s=2.0, wrap_up_s=10.0,
                  ring_timeout_s=25.0)
    values.update(overrides)
    return CampaignSettings(**values)


class Harness:
    def __init__(self, *campaigns: CampaignSettings, trunks=(("t1", 100, 100.0),)) -> None:
        self.policies: dict[str, ScriptedPolicy] = {}
        self.core = EngineCore(campaigns or (campaign(),), trunks, self._policy)
        self.now = 0.0
        self.log: list = []
        self._lead_ids = iter(range(1, 10**9))

    def _policy(self, settings: CampaignSettings) -> ScriptedPolicy:
        return self.policies.setdefault(settings.name, ScriptedPolicy())

    def send(self, event, at: float | None = None) -> list:
        if at is not None:
            self.now = at
        out = self.core.handle(event, self.now)
        self.log.extend(out)
        return out

    def advance(self, to: float) -> list:
        """Fire every deadline up to ``to`` (one Tick per deadline, as a runtime would), then stand at ``to``."""
        out = []
        while (deadline := self.core.next_deadline()) is not None and deadline <= to:
            out += self.send(ev.Tick(), at=max(deadline, self.now))
        self.now = to
        return out

    def agent_up(self, agent_id: str, at: float | None = None) -> list:
        return self.send(ev.AgentLoggedIn(agent_id), at) + self.send(ev.AgentLegUp(agent_id))

    def lead(self, attempt_number: int = 1) -> ev.GrantedLead:
        lead_id = next(self._lead_ids)
        return ev.GrantedLead(lead_id, f"+1415555{lead_id:04d}", 1000 + lead_id, attempt_number)

    def dial(self, count: int = 1, campaign_name: str = "c1", attempt_number: int = 1) -> list[ev.Originate]:
        """Grant ``count`` leads to the campaign (as the gate would) and return the Originate commands."""
        leads = tuple(self.lead(attempt_number) for _ in range(count))
        out = self.send(ev.LeadsGranted(campaign_name, 0, leads))
        return [c for c in out if isinstance(c, ev.Originate)]


def of(kind, commands) -> list:
    return [c for c in commands if isinstance(c, kind)]
