"""Gates for `dialer simulate`: allow-all by default, or the real compliance Gate with a rule pack.

With a rule pack, every lead the core asks for goes through ``compliance.gate.Gate.reserve`` on a
throw-away SQLite ledger, at the virtual time mapped onto ``start_at``; outcomes are recorded in that
ledger and the pack's abandonment cap is polled, so a simulated shift meets the same calling windows,
caps and refusals as the engine would.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from dialer.core import events as ev

# Lead numbers spread over the pack's country and its time zones, in valid numbering ranges.
NUMBER_PLANS: dict[str, tuple[tuple[str, int], ...]] = {
    "us": (("+1212", 7), ("+1312", 7), ("+1303", 7), ("+1415", 7), ("+1305", 7), ("+1907", 7)),
    "uk": (("+4420", 8), ("+44161", 7), ("+447700", 6)),
    "cn": (("+86138", 8), ("+86139", 8), ("+86991", 8)),
}
ABANDON_CAP_POLL_S = 60.0


class SimulationGate(Protocol):
    def grant(self, campaign: str, request_id: int, count: int, now: float) -> list[ev.Event]:
        """The gate's answer to RequestLeads: LeadRefused events, then one LeadsGranted."""

    def record_outcome(self, command: ev.RecordOutcome, now: float) -> None: ...

    def abandon_cap(self, campaign: str, now: float) -> ev.AbandonCapChanged | None:
        """A change of the campaign's abandonment cap, if one is due and happened."""

    def close(self) -> dict[str, int]:
        """Release resources; returns refusals by reason."""


class AllowAllGate:
    def __init__(self) -> None:
        self._lead_ids = itertools.count(1)

    def grant(self, campaign: str, request_id: int, count: int, now: float) -> list[ev.Event]:
        leads = []
        for _ in range(count):
            lead_id = next(self._lead_ids)
            leads.append(ev.GrantedLead(lead_id, f"+1555{lead_id:07d}", lead_id))
        return [ev.LeadsGranted(campaign, request_id, tuple(leads))]

    def record_outcome(self, command: ev.RecordOutcome, now: float) -> None:
        pass

    def abandon_cap(self, campaign: str, now: float) -> ev.AbandonCapChanged | None:
        return None

    def close(self) -> dict[str, int]:
        return {}


def random_number(rng: random.Random, pack: str) -> str:
    prefix, digits = rng.choice(NUMBER_PLANS[pack])
    return prefix + str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))


class RulePackGate:
    """The real compliance Gate on a temporary SQLite ledger, driven from the synchronous simulation loop."""

    def __init__(self, pack: str, caller_id: str, campaign_compliance, *, start_at: datetime, seed: int,
                 ledger_dir: Path | None = None) -> None:
        from compliance.gate import CampaignContext, Gate
        from compliance.ledger_sqlite import SqliteLedger

        if pack not in NUMBER_PLANS:
            raise ValueError(f"no simulated numbering plan for rule pack {pack!r} (have: {', '.join(NUMBER_PLANS)})")
        if start_at.tzinfo is None:
            raise ValueError("start_at must be timezone-aware")
        self.pack = pack
        self.start_at = start_at
        self._rng = random.Random(seed)
        self._lead_ids = itertools.count(1)
        self._refusals: dict[str, int] = {}
        self._cap_state = False
        self._next_cap_poll = 0.0
        self._tmp = tempfile.TemporaryDirectory(prefix="dialer-sim-ledger-", dir=ledger_dir)
        self._loop = asyncio.new_event_loop()
        self._context = CampaignContext.from_settings("sim", caller_id, campaign_compliance.model_copy(
            update={"rule_pack": pack}))
        # A throw-away ledger: durability buys nothing here, so no fsync per reservation.
        ledger = self._run(SqliteLedger.open(str(Path(self._tmp.name) / "ledger.db"), synchronous="off"))
        self._gate = Gate(ledger)
        self._run(self._gate.ledger.register_caller_id(caller_id, True, start_at))

    def _run(self, coroutine):
        return self._loop.run_until_complete(coroutine)

    def _at(self, now: float) -> datetime:
        return self.start_at + timedelta(seconds=now)

    def grant(self, campaign: str, request_id: int, count: int, now: float) -> list[ev.Event]:
        answer: list[ev.Event] = []
        leads = []
        candidates = [(next(self._lead_ids), random_number(self._rng, self.pack)) for _ in range(count)]
        at = self._at(now)
        decisions = self._run(self._reserve_all([number for _, number in candidates], at))
        for (lead_id, number), decision in zip(candidates, decisions):
            if decision.allowed:
                leads.append(ev.GrantedLead(lead_id, number, decision.attempt_id))
                continue
            reason = decision.reason.value
            self._refusals[reason] = self._refusals.get(reason, 0) + 1
            next_at = decision.next_allowed_at
            answer.append(ev.LeadRefused(campaign, lead_id, reason,
                                         None if next_at is None else (next_at - self.start_at).total_seconds()))
        answer.append(ev.LeadsGranted(campaign, request_id, tuple(leads)))
        return answer

    async def _reserve_all(self, numbers: list[str], at: datetime):
        """Concurrently, so the ledger can commit them as one group."""
        return await asyncio.gather(*(self._gate.reserve(number, self._context, at) for number in numbers))

    def record_outcome(self, command: ev.RecordOutcome, now: float) -> None:
        if command.attempt_id is not None:
            self._run(self._gate.record_outcome(command.attempt_id, command.outcome, command.sip_code, self._at(now)))

    def abandon_cap(self, campaign: str, now: float) -> ev.AbandonCapChanged | None:
        if now < self._next_cap_poll:
            return None
        self._next_cap_poll = now + ABANDON_CAP_POLL_S
        active = self._run(self._gate.abandon_cap_active(self._context, self._at(now)))
        if active == self._cap_state:
            return None
        self._cap_state = active
        return ev.AbandonCapChanged(campaign, active)

    def close(self) -> dict[str, int]:
        self._run(self._gate.close())
        self._loop.close()
        self._tmp.cleanup()
        return dict(sorted(self._refusals.items()))
