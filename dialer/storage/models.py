"""Rows the store reads and writes. All times are timezone-aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Literal

CampaignState = Literal["stopped", "running", "paused"]
LeadStatus = Literal["new", "scheduled", "dialing", "done", "closed"]
CAMPAIGN_STATES: tuple[str, ...] = ("stopped", "running", "paused")
LEAD_STATUSES: tuple[str, ...] = ("new", "scheduled", "dialing", "done", "closed")
FINAL_LEAD_STATUSES: tuple[str, ...] = ("done", "closed")


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    state: CampaignState
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewLead:
    """A lead ready to store: the number is already normalised to E.164."""

    e164: str
    raw_number: str
    time_zones: tuple[str, ...] = ()
    priority: int = 0
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    campaign: str
    e164: str
    raw_number: str
    time_zones: tuple[str, ...]
    status: LeadStatus
    attempts: int
    next_attempt_at: datetime | None
    priority: int
    fields: dict[str, str]
    claimed_by: str | None
    last_outcome: str | None = None  # the call outcome or gate reason of the latest schedule/finish
    passes: int = 0  # times the lead was recycled


@dataclass(frozen=True, slots=True)
class AddLeadsResult:
    imported: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Cdr:
    """One row per call. Holds lead_id, never the number, so exports carry no personal data."""

    call_id: str
    campaign: str
    lead_id: int | None
    trunk: str | None
    agent_id: str | None
    started_at: datetime
    answered_at: datetime | None
    bridged_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    sip_code: int | None
    abandoned: bool
    recording_path: str | None
    hangup_by: str | None
    node: str


# Outcome classes of a call (the SIP layer's classes, plus abandoned: answered but no agent within the limit).
CDR_OUTCOMES: tuple[str, ...] = (
    "answered", "busy", "no_answer", "invalid", "rejected", "congestion", "failed", "abandoned",
)

# Outcomes after which a closed lead may be recycled for another pass. Never: answered (reached), invalid
# (no such number), rejected (the callee declined), nor any gate reason (DNC, consent, caps: compliance closed it).
RECYCLABLE_OUTCOMES: tuple[str, ...] = ("busy", "no_answer", "congestion", "failed", "abandoned")


def recycle_problem(outcomes: Iterable[str]) -> str | None:
    """Why these outcomes cannot be recycled (none given, or one not recyclable), or None when they can."""
    chosen = list(outcomes)
    if not chosen:
        return "no outcomes given"
    for outcome in chosen:
        if outcome not in RECYCLABLE_OUTCOMES:
            return f"{outcome!r} cannot be recycled (recyclable: {', '.join(RECYCLABLE_OUTCOMES)})"
    return None

# Columns a caller may set on a live CDR with Store.update_cdr.
CDR_UPDATABLE: frozenset[str] = frozenset({"trunk", "agent_id", "answered_at", "bridged_at", "sip_code", "recording_path"})
CDR_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Cdr))


@dataclass(frozen=True, slots=True)
class Disposition:
    call_id: str
    agent_id: str
    disposition: str
    created_at: datetime
