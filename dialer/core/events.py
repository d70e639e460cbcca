"""Events fed to the engine core and commands it hands back (sans-I/O, like aioquic's events.py).

The runtime (or the simulator) calls ``EngineCore.handle(event, now)`` and carries out the returned
commands. Times are floats in the core's clock (monotonic in the runtime, virtual in the simulator);
the runtime converts them to wall-clock time where it stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CampaignName = str
CallId = str
AgentId = str

FAILURE_OUTCOMES = ("busy", "no_answer", "invalid", "rejected", "congestion", "failed")
FailureOutcome = Literal["busy", "no_answer", "invalid", "rejected", "congestion", "failed"]
Outcome = Literal["answered", "abandoned", "busy", "no_answer", "invalid", "rejected", "congestion", "failed"]


# ---------------------------------------------------------------- events (inputs)


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has advanced to ``now``: fire due timers and pacing decisions."""


@dataclass(frozen=True, slots=True)
class CampaignStart:
    campaign: CampaignName


@dataclass(frozen=True, slots=True)
class CampaignPause:
    campaign: CampaignName


@dataclass(frozen=True, slots=True)
class CampaignStop:
    campaign: CampaignName


@dataclass(frozen=True, slots=True)
class AbandonCapChanged:
    """The compliance gate says the campaign's abandonment cap is (or is no longer) reached."""

    campaign: CampaignName
    active: bool


@dataclass(frozen=True, slots=True)
class GrantedLead:
    lead_id: int
    number: str
    attempt_id: int | None
    attempt_number: int = 1  # attempts on this lead including this one (for max_attempts)


@dataclass(frozen=True, slots=True)
class LeadsGranted:
    """The answer to one RequestLeads: the leads the gate reserved (possibly fewer than asked, or none)."""

    campaign: CampaignName
    request_id: int
    leads: tuple[GrantedLead, ...]


@dataclass(frozen=True, slots=True)
class LeadRefused:
    """The gate refused a lead while serving a RequestLeads; it is never originated."""

    campaign: CampaignName
    lead_id: int
    reason: str
    next_allowed_at_s: float | None  # in the core's clock; None: never


@dataclass(frozen=True, slots=True)
class Ringing:
    call_id: CallId


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: CallId


@dataclass(frozen=True, slots=True)
class Failed:
    call_id: CallId
    sip_code: int | None
    outcome: FailureOutcome


@dataclass(frozen=True, slots=True)
class Ended:
    call_id: CallId
    by: Literal["local", "remote"]
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class AnnouncementFinished:
    call_id: CallId


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    """The agent logged in; the core asks for the agent's phone leg (CallAgent)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class AgentLegUp:
    """The agent's phone leg is up; the agent becomes ready."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class AgentLegDown:
    """The agent's phone leg dropped; the agent is logged out (a bridged call is hung up)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class AgentReady:
    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class AgentPaused:
    """Pause now, or at the end of the current call and wrap-up."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class Disposition:
    """The agent's disposition of a call; it ends the agent's wrap-up early."""

    agent_id: AgentId
    call_id: CallId
    disposition: str


Event = (
    Tick | CampaignStart | CampaignPause | CampaignStop | AbandonCapChanged | LeadsGranted | LeadRefused
    | Ringing | Answered | Failed | Ended | AnnouncementFinished | AgentLoggedIn | AgentLegUp | AgentLegDown
    | AgentReady | AgentPaused | AgentLoggedOut | Disposition
)


# ---------------------------------------------------------------- commands (outputs)


@dataclass(frozen=True, slots=True)
class RequestLeads:
    """Reserve up to ``count`` leads through the gate; answer with one LeadsGranted (same request_id)."""

    campaign: CampaignName
    request_id: int
    count: int


@dataclass(frozen=True, slots=True)
class Originate:
    call_id: CallId
    campaign: CampaignName
    lead_id: int
    attempt_id: int | None
    number: str
    trunk: str
    caller_id: str
    ring_timeout_s: float


@dataclass(frozen=True, slots=True)
class Cancel:
    """Ring timeout: CANCEL the unanswered call (the core has already counted it no_answer)."""

    call_id: CallId


@dataclass(frozen=True, slots=True)
class Bridge:
    call_id: CallId
    agent_id: AgentId
    recording_name: str  # relative to the node's recordings_dir; the CDR carries the same name


@dataclass(frozen=True, slots=True)
class PlayAnnouncement:
    call_id: CallId
    announcement: str | None  # the campaign's WAV path


@dataclass(frozen=True, slots=True)
class Hangup:
    call_id: CallId
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class CallAgent:
    """Bring up (and keep up) the agent's phone leg."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class ReleaseAgent:
    """Hang up the agent's phone leg (logout)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """Final outcome of a gate-reserved attempt, for the compliance ledger."""

    campaign: CampaignName
    attempt_id: int | None
    lead_id: int
    outcome: Outcome
    sip_code: int | None


@dataclass(frozen=True, slots=True)
class ScheduleRetry:
    """The lead's next attempt: at ``at_s`` (core clock, ``delay_s`` from now), or closed when ``at_s`` is None."""

    campaign: CampaignName
    lead_id: int
    at_s: float | None
    delay_s: float | None
    outcome: str  # the outcome or gate reason that led here

    @property
    def closed(self) -> bool:
        return self.at_s is None


@dataclass(frozen=True, slots=True)
class RecordDisposition:
    campaign: CampaignName
    call_id: CallId
    lead_id: int
    agent_id: AgentId
    disposition: str


@dataclass(frozen=True, slots=True)
class WriteCdr:
    """One row per call. Times are in the core's clock; None when the call never got there."""

    call_id: CallId
    campaign: CampaignName
    lead_id: int
    attempt_id: int | None
    trunk: str
    started_at: float
    answered_at: float | None
    bridged_at: float | None
    ended_at: float
    outcome: Outcome
    sip_code: int | None
    agent_id: AgentId | None
    abandoned: bool
    recording_name: str | None


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """Notification for metrics and live status: an agent moved from one state to another."""

    agent_id: AgentId
    old: str
    new: str
    elapsed_s: float  # time spent in the old state


Command = (
    RequestLeads | Originate | Cancel | Bridge | PlayAnnouncement | Hangup | CallAgent | ReleaseAgent
    | RecordOutcome | ScheduleRetry | RecordDisposition | WriteCdr | AgentStateChanged
)
