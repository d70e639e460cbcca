"""Run the real engine core against the simulated world (pacing.simulator) on a virtual clock.

The core makes every decision (pacing ticks, gate requests, trunk limits, which agent takes which call,
the connect limit, wrap-up); the world decides what callees and agents do. The gate is an in-memory
allow-all (every lead asked for is granted at once) unless a rule pack is asked for, then the real
compliance Gate (dialer.simulate_gate). Nothing sleeps: the loop jumps from one deadline
(the core's ``next_deadline()`` or the world's ``next_event_time()``) to the next, so a shift costs
O(events + pacing ticks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dialer.config import CampaignSettings
from dialer.core import EngineCore
from dialer.core import events as ev
from dialer.core.pacer import PacingPolicy, campaign_policy
from dialer.simulate_gate import AllowAllGate, RulePackGate, SimulationGate
from pacing.settings import PacingSettings
from pacing.simulator import (
    AgentBreakEnded,
    AgentBreakStarted,
    CallAnswered,
    CallerHungUp,
    CallFailed,
    Scenario,
    SimulatedWorld,
    TalkFinished,
)
from pacing.simulator_report import SimulationReport

CAMPAIGN = "sim"
TRUNK = "sim"
UNLIMITED_CHANNELS = 1_000_000
UNLIMITED_CPS = 1e9
DEFAULT_ABANDON_WINDOW_S = 86400.0
DEFAULT_START_AT = datetime.fromisoformat("2026-03-03T14:00:00+00:00")  # a Tuesday, 09:00 in New York


@dataclass(frozen=True, slots=True)
class EngineTally:
    """What the engine core itself did in the simulation (the world's report has the KPIs)."""

    originated: int
    lead_requests: int
    bridges: int
    announcements: int
    outcomes: dict[str, int]
    gate_refusals: dict[str, int] = field(default_factory=dict)


def simulation_campaign(scenario: Scenario, pacing_settings: PacingSettings) -> CampaignSettings:
    """The campaign the simulated engine runs: the scenario's engine-side numbers and the pacing under test."""
    return CampaignSettings(
        name=CAMPAIGN,
        caller_id="+10000000000",
        trunks=(TRUNK,),
        ring_timeout_s=scenario.no_answer_timeout_s,
        connect_limit_s=scenario.connect_limit_s,
        wrap_up_s=scenario.wrap_up_s,
        pacing=pacing_settings,
    )


class Simulation:
    """One simulated shift: the engine core, the world, and the gate between them (allow-all by default).

    ``run()`` returns the world's report; ``tally()`` what the engine did (outcomes, gate refusals);
    ``close()`` releases the gate (call it after run)."""

    def __init__(
        self,
        scenario: Scenario,
        pacing_settings: PacingSettings,
        *,
        seed: int,
        abandon_window_s: float = DEFAULT_ABANDON_WINDOW_S,
        trunk_channels: int | None = None,
        max_cps: float | None = None,
        policy_factory: Callable[[CampaignSettings], PacingPolicy] | None = None,
        gate: SimulationGate | None = None,
    ) -> None:
        self.scenario = scenario
        self.gate = gate if gate is not None else AllowAllGate()
        self.world = SimulatedWorld(scenario, seed)
        if policy_factory is None:
            def policy_factory(campaign: CampaignSettings) -> PacingPolicy:
                return campaign_policy(campaign, abandon_window_s=abandon_window_s, seed=seed)
        trunk = (TRUNK, trunk_channels or UNLIMITED_CHANNELS, max_cps or UNLIMITED_CPS)
        self.core = EngineCore([simulation_campaign(scenario, pacing_settings)], [trunk], policy_factory)
        self._inbox: deque[ev.Event] = deque()
        self._counts: dict[str, int] = {}
        self._refusals: dict[str, int] = {}
        self._outcomes: dict[str, int] = {}

    def run(self) -> SimulationReport:
        end = self.scenario.duration_s
        for agent_id in self.world.agent_ids:
            self._feed(ev.AgentLoggedIn(agent_id), 0.0)
        self._feed(ev.CampaignStart(CAMPAIGN), 0.0)
        while True:
            core_at, world_at = self.core.next_deadline(), self.world.next_event_time()
            now = min(t for t in (core_at, world_at, end + 1.0) if t is not None)
            if now > end:
                break
            if world_at is not None and world_at <= now:
                for world_event in self.world.pop_events(until=world_at):
                    self._feed(_engine_event(world_event), world_event.at)
            else:
                self._feed(ev.Tick(), now)
            if (cap := self.gate.abandon_cap(CAMPAIGN, now)) is not None:
                self._feed(cap, now)
        return self.world.report()

    def tally(self) -> EngineTally:
        c = self._counts
        return EngineTally(c.get("Originate", 0), c.get("RequestLeads", 0), c.get("Bridge", 0),
                           c.get("PlayAnnouncement", 0), dict(sorted(self._outcomes.items())), self._refusals)

    def close(self) -> None:
        self._refusals = self.gate.close()

    # ------------------------------------------------------------ the loop between core and world

    def _feed(self, event: ev.Event, now: float) -> None:
        self._inbox.append(event)
        while self._inbox:
            for command in self.core.handle(self._inbox.popleft(), now):
                self._carry_out(command, now)

    def _carry_out(self, command: ev.Command, now: float) -> None:
        name = type(command).__name__
        self._counts[name] = self._counts.get(name, 0) + 1
        match command:
            case ev.RequestLeads(campaign=campaign, request_id=request_id, count=count):
                self._inbox.extend(self.gate.grant(campaign, request_id, count, now))
            case ev.Originate(call_id=call_id):
                self.world.dial(call_id, now)
            case ev.Cancel(call_id=call_id):
                self.world.cancel(call_id, now)
            case ev.Bridge(call_id=call_id, agent_id=agent_id):
                self.world.connect(call_id, agent_id, now)
            case ev.PlayAnnouncement(call_id=call_id):
                self.world.drop(call_id, now)  # the world's drop: message played and hung up
                self._inbox.append(ev.AnnouncementFinished(call_id))
            case ev.CallAgent(agent_id=agent_id):
                self._inbox.append(ev.AgentLegUp(agent_id))
            case ev.RecordOutcome(outcome=outcome):
                self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
                self.gate.record_outcome(command, now)


def _engine_event(world_event) -> ev.Event:
    match world_event:
        case CallAnswered(call_id=call_id):
            return ev.Answered(call_id)
        case CallFailed(call_id=call_id, outcome=outcome, sip_code=sip_code):
            return ev.Failed(call_id, sip_code, outcome)
        case CallerHungUp(call_id=call_id) | TalkFinished(call_id=call_id):
            return ev.Ended(call_id, "remote")
        case AgentBreakStarted(agent_id=agent_id):
            return ev.AgentPaused(agent_id)
        case AgentBreakEnded(agent_id=agent_id):
            return ev.AgentReady(agent_id)
    raise TypeError(f"unknown world event {world_event!r}")


def run_simulation(
    scenario: Scenario,
    pacing_settings: PacingSettings,
    *,
    seed: int = 0,
    hours: float | None = None,
    abandon_window_s: float = DEFAULT_ABANDON_WINDOW_S,
    trunk_channels: int | None = None,
    max_cps: float | None = None,
    policy_factory: Callable[[CampaignSettings], PacingPolicy] | None = None,
    rule_pack: str | None = None,
    start_at: datetime | None = None,
) -> SimulationReport:
    """Simulate one shift of ``scenario`` with the real engine core pacing by ``pacing_settings``.

    ``seed`` seeds the world and the policy (same seed, same report). ``hours`` overrides
    ``scenario.hours``. ``abandon_window_s`` is the regulatory window the pacer's closed loop keeps under
    target (default 24 h). ``trunk_channels`` / ``max_cps`` limit the one simulated trunk (default:
    unlimited). ``policy_factory(campaign_settings) -> PacingPolicy`` replaces ``pacing.make_policy``
    (e.g. for a controller under comparison). ``rule_pack`` (us, uk, cn) sends every lead through the real
    compliance Gate on a temporary ledger, with numbers of that country and virtual time 0 at ``start_at``
    (timezone-aware; default DEFAULT_START_AT); without it the gate allows all. The engine uses the scenario's ``wrap_up_s``,
    ``connect_limit_s`` and ``no_answer_timeout_s`` (as the ring timeout). Returns the world's
    ``pacing.simulator_report.SimulationReport`` (dials, answers, abandons, abandon_rate,
    talk_utilization, occupancy, talk_minutes_per_agent_hour, mean_agent_wait_s, series per 30 min).
    """
    if hours is not None:
        scenario = scenario.model_copy(update={"hours": hours})
        scenario = type(scenario).model_validate(scenario.model_dump())
    simulation = Simulation(scenario, pacing_settings, seed=seed, abandon_window_s=abandon_window_s,
                            trunk_channels=trunk_channels, max_cps=max_cps, policy_factory=policy_factory,
                            gate=make_gate(scenario, pacing_settings, rule_pack, start_at, seed))
    try:
        return simulation.run()
    finally:
        simulation.close()


def make_gate(scenario: Scenario, pacing_settings: PacingSettings, rule_pack: str | None,
              start_at: datetime | None, seed: int) -> SimulationGate:
    if rule_pack is None:
        return AllowAllGate()
    campaign = simulation_campaign(scenario, pacing_settings)
    return RulePackGate(rule_pack, campaign.caller_id, campaign.compliance,
                        start_at=start_at or DEFAULT_START_AT, seed=seed)
