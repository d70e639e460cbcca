"""The storage interface the engine, the CLI and the API use; SQLite and PostgreSQL implement it identically."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone

from dialer.storage.models import (
    CAMPAIGN_STATES,
    CDR_OUTCOMES,
    CDR_UPDATABLE,
    FINAL_LEAD_STATUSES,
    AddLeadsResult,
    Campaign,
    CampaignState,
    Cdr,
    Disposition,
    Lead,
    NewLead,
    recycle_problem,
)

EXPORT_PAGE_ROWS = 1000


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused so that no local time slips into the records."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the store only takes timezone-aware times")
    return moment.astimezone(timezone.utc)


# Crash recovery: a released lead whose call had started (a CDR opened since its claim) counts the attempt.
ATTEMPTS_AFTER_RELEASE = (
    "attempts + CASE WHEN EXISTS (SELECT 1 FROM cdrs WHERE cdrs.lead_id = leads.id"
    " AND cdrs.started_at >= leads.claimed_at) THEN 1 ELSE 0 END"
)


def check_campaign_state(state: str) -> None:
    if state not in CAMPAIGN_STATES:
        raise ValueError(f"campaign state must be one of {CAMPAIGN_STATES}, got {state!r}")


def check_final_status(status: str) -> None:
    if status not in FINAL_LEAD_STATUSES:
        raise ValueError(f"finish_lead: status must be one of {FINAL_LEAD_STATUSES}, got {status!r}")


def check_outcome(outcome: str) -> None:
    if outcome not in CDR_OUTCOMES:
        raise ValueError(f"close_cdr: outcome must be one of {CDR_OUTCOMES}, got {outcome!r}")


def check_recycle_outcomes(outcomes: Iterable[str]) -> list[str]:
    """The outcomes to recycle, sorted and distinct; refuses an empty set and any outcome that may not be recycled."""
    chosen = sorted(set(outcomes))
    problem = recycle_problem(chosen)
    if problem:
        raise ValueError(f"recycle_leads: {problem}")
    return chosen


def check_cdr_update(values: dict[str, object]) -> list[str]:
    """The columns to set, sorted; refuses any column a live call may not change."""
    unknown = set(values) - CDR_UPDATABLE
    if unknown:
        raise ValueError(f"update_cdr: cannot set {sorted(unknown)}; settable: {sorted(CDR_UPDATABLE)}")
    return sorted(values)


class Store(abc.ABC):
    """Campaign state, leads (the hopper), CDRs, agent sessions and dispositions.

    `node` names the engine process using this store: leads it claims and CDRs it opens carry it, so that a
    restarted node can release its own leftovers (release_dialing_leads, close_live_cdrs) without touching
    another node's live work.
    """

    node: str

    # campaigns
    @abc.abstractmethod
    async def set_campaign_state(self, name: str, state: CampaignState, now: datetime) -> Campaign: ...

    @abc.abstractmethod
    async def get_campaign(self, name: str) -> Campaign | None: ...

    @abc.abstractmethod
    async def list_campaigns(self) -> list[Campaign]: ...

    # leads
    @abc.abstractmethod
    async def add_leads(self, campaign: str, leads: Iterable[NewLead], now: datetime) -> AddLeadsResult:
        """Insert leads due now; a number already in the campaign is counted as a duplicate and left untouched."""

    @abc.abstractmethod
    async def get_lead(self, lead_id: int) -> Lead | None: ...

    @abc.abstractmethod
    async def list_leads(self, campaign: str, *, status: str | None = None, limit: int = 1000) -> list[Lead]: ...

    @abc.abstractmethod
    async def count_leads(self, campaign: str) -> dict[str, int]:
        """Leads of the campaign by status (every status present, zero when none)."""

    @abc.abstractmethod
    async def claim_leads(self, campaign: str, now: datetime, limit: int) -> list[Lead]:
        """The hopper: up to `limit` due leads, highest priority first then earliest due, atomically marked
        dialing for this node, so that no two nodes or tasks ever claim the same lead."""

    @abc.abstractmethod
    async def schedule_lead(
        self, lead_id: int, next_attempt_at: datetime, *, attempted: bool, outcome: str | None = None
    ) -> bool:
        """Put a lead back in the hopper, due at next_attempt_at; `attempted` counts a dial attempt; `outcome`
        (the call outcome or gate reason), when given, becomes the lead's last_outcome.
        Returns False when no such lead exists."""

    @abc.abstractmethod
    async def finish_lead(self, lead_id: int, status: str, *, attempted: bool, outcome: str | None = None) -> bool:
        """Take a lead out of the hopper: status "done" (reached) or "closed" (attempts used up, refused for
        good); `outcome` as for schedule_lead. Returns False when no such lead exists."""

    @abc.abstractmethod
    async def recycle_leads(
        self, campaign: str, outcomes: Iterable[str], due_at: datetime, *, max_passes: int | None = None
    ) -> int:
        """List recycling: the campaign's closed leads whose last outcome is in `outcomes` (each one of
        RECYCLABLE_OUTCOMES) go back to the hopper for a new pass, attempts reset to 0, due at `due_at`, their
        pass count raised by one; with `max_passes`, only leads recycled fewer times than that.
        Reached leads ("done") and leads closed for any other reason stay closed. Returns how many reopened."""

    @abc.abstractmethod
    async def release_dialing_leads(self, node: str) -> int:
        """Crash recovery: leads `node` had claimed go back to the hopper, due as before. A lead whose call had
        started (a CDR opened since the claim) counts that attempt. Returns how many leads were released."""

    # CDRs
    @abc.abstractmethod
    async def open_cdr(
        self, call_id: str, campaign: str, lead_id: int | None, trunk: str | None, started_at: datetime
    ) -> None: ...

    @abc.abstractmethod
    async def update_cdr(self, call_id: str, **values: object) -> None:
        """Set columns of CDR_UPDATABLE on a CDR; raises KeyError if the CDR does not exist."""

    @abc.abstractmethod
    async def close_cdr(
        self,
        call_id: str,
        ended_at: datetime,
        outcome: str,
        *,
        sip_code: int | None = None,
        abandoned: bool = False,
        hangup_by: str | None = None,
    ) -> None:
        """End a call record; raises KeyError if the CDR does not exist."""

    @abc.abstractmethod
    async def get_cdr(self, call_id: str) -> Cdr | None: ...

    @abc.abstractmethod
    async def close_live_cdrs(self, node: str, now: datetime) -> int:
        """At restart: calls `node` had live are closed with outcome "failed", hangup_by "crash". Returns how many."""

    @abc.abstractmethod
    async def _cdr_page(
        self, campaign: str | None, since: datetime | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[Cdr]:
        """CDRs ordered by (started_at, call_id), strictly after `after`."""

    async def export_cdrs(self, *, campaign: str | None = None, since: datetime | None = None) -> AsyncIterator[Cdr]:
        """Every CDR (of a campaign, started at or after `since`) in start order, read page by page."""
        after: tuple[datetime, str] | None = None
        while True:
            page = await self._cdr_page(campaign, utc(since) if since else None, after, EXPORT_PAGE_ROWS)
            for cdr in page:
                yield cdr
            if len(page) < EXPORT_PAGE_ROWS:
                return
            after = (page[-1].started_at, page[-1].call_id)

    # agents
    @abc.abstractmethod
    async def agent_login(self, agent_id: str, at: datetime) -> int:
        """Open an agent session (closing any session the agent left open). Returns the session id."""

    @abc.abstractmethod
    async def agent_logout(self, agent_id: str, at: datetime) -> bool:
        """Close the agent's open session. Returns False when none was open."""

    @abc.abstractmethod
    async def open_agent_sessions(self) -> list[str]:
        """Agents whose session on this node is open (a node logs back in only its own agents at a restart)."""

    @abc.abstractmethod
    async def record_disposition(self, call_id: str, agent_id: str, disposition: str, at: datetime) -> None:
        """One disposition per call; a later one from the agent replaces the earlier (agents correct mistakes)."""

    @abc.abstractmethod
    async def get_disposition(self, call_id: str) -> Disposition | None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
