"""EngineCore: the dialer's decisions for one node as a pure state machine (events in, commands out).

Nothing here reads a clock, sleeps or does I/O. The driver (the asyncio runtime, or dialer.simulate on a
virtual clock) calls ``handle(event, now)`` and carries out the returned commands, and calls
``handle(Tick(), now)`` at ``next_deadline()``. Every timer (pacing interval, ring timeout, connect limit,
wrap-up, trunk calls-per-second slots) lives in one heap, so the cost is O(log n) per event plus one
snapshot per campaign per pacing interval.

Leads the gate granted are always originated (as trunk capacity allows), also after a pause: the
reservation is already in the ledger, so "reserved" means "dialled".
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dialer.config import CampaignSettings
from dialer.core import pacer
from dialer.core.agents import AgentPool, AgentRecord
from dialer.core.events import (
    AbandonCapChanged,
    AgentLegDown,
    AgentLegUp,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
    AgentStateChanged,
    Answered,
    AnnouncementFinished,
    Bridge,
    CallAgent,
    CampaignPause,
    CampaignStart,
    CampaignStop,
    Cancel,
    Command,
    Disposition,
    Ended,
    Event,
    Failed,
    GrantedLead,
    Hangup,
    LeadRefused,
    LeadsGranted,
    Originate,
    PlayAnnouncement,
    RecordDisposition,
    RecordOutcome,
    ReleaseAgent,
    RequestLeads,
    Ringing,
    ScheduleRetry,
    Tick,
    WriteCdr,
)
from dialer.core.retry import retry_delay_s
from dialer.core.timers import TimerHeap
from dialer.core.trunks import TrunkPool
from dialer.errors import Conflict, NotFound

RING_TIMEOUT_SIP_CODE = 487  # our CANCEL: Request Terminated

PolicyFactory = Callable[[CampaignSettings], pacer.PacingPolicy]


@dataclass(slots=True)
class CallRecord:
    call_id: str
    campaign: str
    lead: GrantedLead
    trunk: str
    started_at: float
    state: str = "dialing"  # dialing, ringing, waiting, bridged, abandoning
    answered_at: float | None = None
    bridged_at: float | None = None
    agent_id: str | None = None
    abandoned: bool = False
    recording_name: str | None = None


@dataclass(slots=True)
class CampaignRun:
    settings: CampaignSettings
    policy: pacer.PacingPolicy
    state: str = "stopped"  # stopped, running, paused
    abandon_cap_active: bool = False
    pending_requests: dict[int, int] = field(default_factory=dict)  # request_id -> leads asked
    queued_leads: deque[GrantedLead] = field(default_factory=deque)  # granted, waiting for a trunk slot
    ringing: dict[str, CallRecord] = field(default_factory=dict)  # dialing or ringing
    waiting: OrderedDict[str, CallRecord] = field(default_factory=OrderedDict)  # answered, no agent yet
    answered_total: int = 0
    abandoned_total: int = 0

    @property
    def name(self) -> str:
        return self.settings.name


class EngineCore:
    def __init__(
        self,
        campaigns: Iterable[CampaignSettings],
        trunks: Iterable[tuple[str, int, float]],
        policy_factory: PolicyFactory,
        *,
        call_id_prefix: str = "",
    ) -> None:
        """``trunks``: (name, max_channels, max_cps) for every trunk the campaigns name.

        ``call_id_prefix`` makes call ids (and the recording names made from them) unique beyond this
        core's life: the runtime passes one per node and boot (e.g. node name and a boot id)."""
        self.campaigns: dict[str, CampaignRun] = {
            c.name: CampaignRun(settings=c, policy=policy_factory(c)) for c in campaigns
        }
        self.trunks = TrunkPool(trunks)
        self.agents = AgentPool(self._campaigns_of_agent)
        self.calls: dict[str, CallRecord] = {}
        self._waiting_all: OrderedDict[str, CallRecord] = OrderedDict()  # every campaign, in answer order
        self._timers = TimerHeap()
        self._call_id_prefix = call_id_prefix
        self._call_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._out: list[Command] = []
        self._now = float("-inf")

    # ------------------------------------------------------------ driver API

    def next_deadline(self) -> float | None:
        """When the driver must next call ``handle(Tick(), now)``; None: only on the next event."""
        return self._timers.next_deadline()

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time ``now`` (never earlier than a previous call) and return the commands.

        Raises dialer.errors.NotFound / Conflict for a caller's mistake (unknown campaign, agent not
        logged in, disposition of a call the agent did not have)."""
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"unknown event {event!r}")
        self._now = now
        self._fire_due_timers(now)
        # A handler refusing a caller's mistake (NotFound, Conflict) raises before changing anything; the
        # commands of timers fired above stay queued and come out with the next call.
        handler(self, event, now)
        out, self._out = self._out, []
        return out

    def live_status(self, now: float) -> dict:
        return {
            "agents": self.agents.count_by_state(),
            "campaigns": {
                name: {
                    "state": run.state,
                    "calls_in_flight": len(run.ringing) + len(run.queued_leads),
                    "answered_waiting": len(run.waiting),
                    "answered": run.answered_total,
                    "abandoned": run.abandoned_total,
                    "abandon_rate": run.abandoned_total / run.answered_total if run.answered_total else 0.0,
                    "ready_agents": self.agents.ready_count(name),
                    "abandon_cap_active": run.abandon_cap_active,
                }
                for name, run in self.campaigns.items()
            },
            "calls": len(self.calls),
        }

    # ------------------------------------------------------------ timers

    def _fire_due_timers(self, now: float) -> None:
        while (key := self._timers.pop_due(now)) is not None:
            kind, subject = key
            at = now
            if kind == "tick":
                self._pacing_tick(self.campaigns[subject], at)
            elif kind == "ring":
                self._ring_timeout(subject, at)
            elif kind == "connect":
                self._connect_limit_reached(subject, at)
            elif kind == "wrap":
                self._wrap_up_over(self.agents[subject], at)
            elif kind == "trunk":
                self._originate_queued(at)

    def _on_tick(self, event: Tick, now: float) -> None:
        """Timers already fired in handle()."""

    # ------------------------------------------------------------ campaigns and pacing

    def _campaign(self, name: str) -> CampaignRun:
        run = self.campaigns.get(name)
        if run is None:
            raise NotFound(f"unknown campaign {name!r}")
        return run

    def _campaigns_of_agent(self, agent_id: str) -> frozenset[str]:
        return frozenset(
            name for name, run in self.campaigns.items()
            if not run.settings.agents or agent_id in run.settings.agents
        )

    def _on_campaign_start(self, event: CampaignStart, now: float) -> None:
        run = self._campaign(event.campaign)
        if run.state != "running":
            run.state = "running"
            self._timers.set(("tick", run.name), now)
            self._fire_due_timers(now)

    def _on_campaign_pause(self, event: CampaignPause, now: float) -> None:
        self._halt(self._campaign(event.campaign), "paused")

    def _on_campaign_stop(self, event: CampaignStop, now: float) -> None:
        self._halt(self._campaign(event.campaign), "stopped")

    def _halt(self, run: CampaignRun, state: str) -> None:
        run.state = state
        self._timers.cancel(("tick", run.name))

    def _on_abandon_cap(self, event: AbandonCapChanged, now: float) -> None:
        self._campaign(event.campaign).abandon_cap_active = event.active

    def snapshot(self, campaign: str, now: float) -> pacer.Snapshot:
        run = self._campaign(campaign)
        in_flight = [pacer.CallView(c.call_id, now - c.started_at) for c in run.ringing.values()]
        not_yet_dialled = len(run.queued_leads) + sum(run.pending_requests.values())
        in_flight.extend(pacer.CallView(f"pending-{i}", 0.0) for i in range(not_yet_dialled))
        free_channels = self.trunks.free_channels(run.settings.trunks) - not_yet_dialled
        return pacer.Snapshot(
            now=now,
            agents=self.agents.views(campaign, now),
            calls_in_flight=tuple(in_flight),
            answered_waiting=len(run.waiting),
            free_trunk_channels=max(0, free_channels),
            abandon_cap_active=run.abandon_cap_active,
        )

    def _pacing_tick(self, run: CampaignRun, now: float) -> None:
        if run.state != "running":
            return
        self._timers.set(("tick", run.name), now + run.settings.pacing.interval_s)
        snapshot = self.snapshot(run.name, now)
        wanted = min(int(run.policy.decide(snapshot)), snapshot.free_trunk_channels)
        if wanted > 0:
            request_id = next(self._request_ids)
            run.pending_requests[request_id] = wanted
            self._out.append(RequestLeads(run.name, request_id, wanted))

    def _on_leads_granted(self, event: LeadsGranted, now: float) -> None:
        run = self._campaign(event.campaign)
        run.pending_requests.pop(event.request_id, None)
        run.queued_leads.extend(event.leads)
        self._originate_queued(now)

    def _on_lead_refused(self, event: LeadRefused, now: float) -> None:
        run = self._campaign(event.campaign)
        at = event.next_allowed_at_s
        self._out.append(
            ScheduleRetry(run.name, event.lead_id, at, None if at is None else max(0.0, at - now), event.reason)
        )

    # ------------------------------------------------------------ originating

    def _originate_queued(self, now: float) -> None:
        """Dial granted leads as trunk channels and calls-per-second allow; highest campaign priority first."""
        self._timers.cancel(("trunk", "*"))
        runs = sorted((r for r in self.campaigns.values() if r.queued_leads), key=lambda r: -r.settings.priority)
        next_slot: float | None = None
        for run in runs:
            while run.queued_leads:
                trunk = self.trunks.pick(run.settings.trunks, now)
                if trunk is None:
                    slot = self.trunks.next_start_at(run.settings.trunks, now)
                    if slot is not None:
                        next_slot = slot if next_slot is None else min(next_slot, slot)
                    break
                self._originate(run, run.queued_leads.popleft(), trunk, now)
        if next_slot is not None:  # strictly later than now, so a rounding slip can never spin the timer loop
            self._timers.set(("trunk", "*"), max(next_slot, math.nextafter(now, math.inf)))

    def _originate(self, run: CampaignRun, lead: GrantedLead, trunk: str, now: float) -> None:
        settings = run.settings
        call_id = f"{self._call_id_prefix}{settings.name}-{next(self._call_ids)}"
        call = CallRecord(call_id, settings.name, lead, trunk, now)
        self.trunks.start(trunk, now)
        self.calls[call.call_id] = call
        run.ringing[call.call_id] = call
        self._timers.set(("ring", call.call_id), now + settings.ring_timeout_s)
        run.policy.observe(pacer.CallLaunched(at=now))
        self._out.append(
            Originate(call.call_id, settings.name, lead.lead_id, lead.attempt_id, lead.number, trunk,
                      settings.caller_id, settings.ring_timeout_s)
        )

    # ------------------------------------------------------------ call progress

    def _on_ringing(self, event: Ringing, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is not None and call.state == "dialing":
            call.state = "ringing"

    def _on_answered(self, event: Answered, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is None or call.state not in ("dialing", "ringing"):
            return
        run = self.campaigns[call.campaign]
        self._timers.cancel(("ring", call.call_id))
        del run.ringing[call.call_id]
        call.answered_at = now
        run.answered_total += 1
        run.policy.observe(pacer.CallAnswered(at=now, ring_s=now - call.started_at))
        agent = self.agents.longest_idle_ready(call.campaign)
        if agent is not None:
            self._bridge(call, agent, now)
            return
        call.state = "waiting"
        run.waiting[call.call_id] = call
        self._waiting_all[call.call_id] = call
        self._timers.set(("connect", call.call_id), now + run.settings.connect_limit_s)

    def _on_failed(self, event: Failed, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is None or call.state not in ("dialing", "ringing"):
            return
        self._fail(call, event.outcome, event.sip_code, now)

    def _ring_timeout(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.state in ("dialing", "ringing"):
            self._out.append(Cancel(call_id))
            self._fail(call, "no_answer", RING_TIMEOUT_SIP_CODE, now)

    def _fail(self, call: CallRecord, outcome: str, sip_code: int | None, now: float) -> None:
        run = self.campaigns[call.campaign]
        self._timers.cancel(("ring", call.call_id))
        run.ringing.pop(call.call_id, None)
        run.policy.observe(pacer.CallFailed(at=now, ring_s=now - call.started_at, outcome=outcome))
        self._settle_lead(run, call, outcome, sip_code, now)
        self._finish(call, outcome, sip_code, now)

    def _settle_lead(self, run: CampaignRun, call: CallRecord, outcome: str, sip_code: int | None,
                     now: float) -> None:
        lead = call.lead
        self._out.append(RecordOutcome(run.name, lead.attempt_id, lead.lead_id, outcome, sip_code))
        delay = retry_delay_s(run.settings.retry, outcome, lead.attempt_number)
        self._out.append(
            ScheduleRetry(run.name, lead.lead_id, None if delay is None else now + delay, delay, outcome)
        )

    def _finish(self, call: CallRecord, outcome: str, sip_code: int | None, now: float) -> None:
        """The call is over for the core: free its channel, write its CDR, forget it."""
        del self.calls[call.call_id]
        self.trunks.release(call.trunk)
        self._out.append(
            WriteCdr(
                call_id=call.call_id, campaign=call.campaign, lead_id=call.lead.lead_id,
                attempt_id=call.lead.attempt_id, trunk=call.trunk, started_at=call.started_at,
                answered_at=call.answered_at, bridged_at=call.bridged_at, ended_at=now, outcome=outcome,
                sip_code=sip_code, agent_id=call.agent_id, abandoned=call.abandoned,
                recording_name=call.recording_name,
            )
        )
        self._originate_queued(now)

    # ------------------------------------------------------------ connecting answered calls to agents

    def _bridge(self, call: CallRecord, agent: AgentRecord, now: float) -> None:
        run = self.campaigns[call.campaign]
        call.state = "bridged"
        call.bridged_at = now
        call.agent_id = agent.agent_id
        call.recording_name = f"{call.campaign}/{call.call_id}.wav"
        self._set_agent_state(agent, "talking", now)
        agent.call_id = agent.last_call_id = call.call_id
        agent.last_campaign, agent.last_lead_id = call.campaign, call.lead.lead_id
        run.policy.observe(pacer.CallConnected(at=now, answer_to_bridge_s=now - call.answered_at))
        self._out.append(Bridge(call.call_id, agent.agent_id, call.recording_name))
        self._settle_lead(run, call, "answered", 200, now)

    def _take_waiting_call(self, agent: AgentRecord, now: float) -> bool:
        """A newly ready agent takes the longest-waiting answered call of its campaigns, if any."""
        for call in self._waiting_all.values():
            if call.campaign in agent.campaigns:
                self._unwait(call)
                self._bridge(call, agent, now)
                return True
        return False

    def _unwait(self, call: CallRecord) -> None:
        self._timers.cancel(("connect", call.call_id))
        del self._waiting_all[call.call_id]
        del self.campaigns[call.campaign].waiting[call.call_id]

    def _connect_limit_reached(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.state != "waiting":
            return
        self._abandon(call, now)
        call.state = "abandoning"
        self._out.append(PlayAnnouncement(call_id, _path_or_none(self.campaigns[call.campaign].settings.announcement)))

    def _abandon(self, call: CallRecord, now: float) -> None:
        run = self.campaigns[call.campaign]
        self._unwait(call)
        call.abandoned = True
        run.abandoned_total += 1
        run.policy.observe(pacer.CallAbandoned(at=now))
        self._settle_lead(run, call, "abandoned", 200, now)

    def _on_announcement_finished(self, event: AnnouncementFinished, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is not None and call.state == "abandoning":
            self._out.append(Hangup(call.call_id, "abandoned"))
            self._finish(call, "abandoned", 200, now)

    def _on_ended(self, event: Ended, now: float) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return
        if call.state in ("dialing", "ringing"):
            self._fail(call, "failed", None, now)
        elif call.state == "waiting":  # the callee hung up before an agent came: abandoned all the same
            self._abandon(call, now)
            self._finish(call, "abandoned", 200, now)
        elif call.state == "abandoning":
            self._finish(call, "abandoned", 200, now)
        elif call.state == "bridged":
            self._talk_over(call, now)

    def _talk_over(self, call: CallRecord, now: float) -> None:
        run = self.campaigns[call.campaign]
        run.policy.observe(pacer.TalkEnded(at=now, talk_s=now - call.bridged_at))
        self._finish(call, "answered", 200, now)
        agent = self.agents.get(call.agent_id)
        if agent is not None and agent.state == "talking" and agent.call_id == call.call_id:
            self._set_agent_state(agent, "wrap_up", now)
            wrap_up_s = run.settings.wrap_up_s
            if wrap_up_s > 0:
                self._timers.set(("wrap", agent.agent_id), now + wrap_up_s)
            else:
                self._wrap_up_over(agent, now)

    # ------------------------------------------------------------ agents

    def _set_agent_state(self, agent: AgentRecord, state: str, now: float) -> None:
        old, elapsed = self.agents.move(agent, state, now)
        self._out.append(AgentStateChanged(agent.agent_id, old, state, elapsed))

    def _become_available(self, agent: AgentRecord, now: float) -> None:
        """End of wrap-up, leg up, or back from pause: honour pending pause/logout, else take a call."""
        agent.call_id = None
        if agent.logout_pending:
            self._log_out(agent, now)
        elif agent.pause_pending:
            agent.pause_pending = False
            self._set_agent_state(agent, "paused", now)
        else:
            self._set_agent_state(agent, "ready", now)
            self._take_waiting_call(agent, now)

    def _wrap_up_over(self, agent: AgentRecord, now: float) -> None:
        if agent.state != "wrap_up":
            return
        self._timers.cancel(("wrap", agent.agent_id))
        call_campaign = agent.last_campaign
        if call_campaign is not None:
            self.campaigns[call_campaign].policy.observe(pacer.WrapUpEnded(at=now, wrap_s=now - agent.since))
        self._become_available(agent, now)

    def _log_out(self, agent: AgentRecord, now: float) -> None:
        agent.logout_pending = agent.pause_pending = False
        self._timers.cancel(("wrap", agent.agent_id))
        self._set_agent_state(agent, "logged_out", now)
        self._out.append(ReleaseAgent(agent.agent_id))

    def _on_agent_logged_in(self, event: AgentLoggedIn, now: float) -> None:
        agent = self.agents.ensure(event.agent_id, now)
        agent.logout_pending = False
        if agent.state == "logged_out":
            self._set_agent_state(agent, "connecting", now)
            self._out.append(CallAgent(agent.agent_id))

    def _on_agent_leg_up(self, event: AgentLegUp, now: float) -> None:
        agent = self.agents.get(event.agent_id)
        if agent is not None and agent.state == "connecting":
            self._become_available(agent, now)

    def _on_agent_leg_down(self, event: AgentLegDown, now: float) -> None:
        agent = self.agents.get(event.agent_id)
        if agent is None or agent.state == "logged_out":
            return
        if agent.state == "talking" and agent.call_id in self.calls:
            call = self.calls[agent.call_id]
            self._out.append(Hangup(call.call_id, "agent_gone"))
            agent.logout_pending = True
            self._talk_over(call, now)
        if agent.state != "logged_out":
            self._log_out(agent, now)

    def _logged_in_agent(self, agent_id: str) -> AgentRecord:
        agent = self.agents.get(agent_id)
        if agent is None or agent.state == "logged_out":
            raise Conflict(f"agent {agent_id!r} is not logged in")
        return agent

    def _on_agent_ready(self, event: AgentReady, now: float) -> None:
        agent = self._logged_in_agent(event.agent_id)
        agent.pause_pending = False
        if agent.state == "paused":
            self._become_available(agent, now)
        elif agent.state == "wrap_up":
            self._wrap_up_over(agent, now)

    def _on_agent_paused(self, event: AgentPaused, now: float) -> None:
        agent = self._logged_in_agent(event.agent_id)
        if agent.state == "ready":
            self._set_agent_state(agent, "paused", now)
        elif agent.state in ("talking", "wrap_up", "connecting"):
            agent.pause_pending = True

    def _on_agent_logged_out(self, event: AgentLoggedOut, now: float) -> None:
        agent = self.agents.get(event.agent_id)
        if agent is None or agent.state == "logged_out":
            return
        if agent.state in ("talking", "wrap_up"):
            agent.logout_pending = True
        else:
            self._log_out(agent, now)

    def _on_disposition(self, event: Disposition, now: float) -> None:
        agent = self.agents.get(event.agent_id)
        if agent is None or agent.last_call_id != event.call_id or agent.last_campaign is None:
            raise NotFound(f"agent {event.agent_id!r} has no call {event.call_id!r} to dispose")
        self._out.append(
            RecordDisposition(agent.last_campaign, event.call_id, agent.last_lead_id, agent.agent_id,
                              event.disposition)
        )
        if agent.state == "wrap_up":
            self._wrap_up_over(agent, now)

    _handlers: dict[type, Callable[["EngineCore", object, float], None]] = {
        Tick: _on_tick,
        CampaignStart: _on_campaign_start,
        CampaignPause: _on_campaign_pause,
        CampaignStop: _on_campaign_stop,
        AbandonCapChanged: _on_abandon_cap,
        LeadsGranted: _on_leads_granted,
        LeadRefused: _on_lead_refused,
        Ringing: _on_ringing,
        Answered: _on_answered,
        Failed: _on_failed,
        Ended: _on_ended,
        AnnouncementFinished: _on_announcement_finished,
        AgentLoggedIn: _on_agent_logged_in,
        AgentLegUp: _on_agent_leg_up,
        AgentLegDown: _on_agent_leg_down,
        AgentReady: _on_agent_ready,
        AgentPaused: _on_agent_paused,
        AgentLoggedOut: _on_agent_logged_out,
        Disposition: _on_disposition,
    }


def _path_or_none(path) -> str | None:
    return None if path is None else str(path)
