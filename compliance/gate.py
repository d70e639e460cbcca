"""The compliance gate the engine calls before every INVITE: reserve the attempt or refuse it with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from compliance.ledger import Ledger, ReserveRequest, open_ledger
from compliance.numbers import InvalidNumber, ParsedNumber, normalize
from compliance.packs import PACKS_DIR, RulePack, load_pack
from compliance.reasons import Reason
from compliance.rules import Verdict, abandon_cap_active, caller_id_reason
from compliance.settings import CampaignCompliance, effective_rules

__all__ = ["CampaignContext", "Decision", "Gate"]


@dataclass(frozen=True)
class CampaignContext:
    name: str
    caller_id: str
    rules: RulePack  # effective: the pack with the campaign's tightening applied

    @classmethod
    def from_settings(
        cls, name: str, caller_id: str, compliance: CampaignCompliance, packs_dir: Path = PACKS_DIR
    ) -> "CampaignContext":
        """Load the campaign's pack and apply its tightening (UnknownPack, PackError, LooseningError on bad config)."""
        return cls(name, caller_id, effective_rules(load_pack(compliance.rule_pack, packs_dir), compliance))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason
    next_allowed_at: datetime | None
    pack: str
    pack_version: str
    attempt_id: int | None

    def as_json(self) -> dict:
        return {
            "allowed": self.allowed,
            "reason": self.reason.value,
            "next_allowed_at": self.next_allowed_at.isoformat() if self.next_allowed_at else None,
        }


def _parse(raw: str) -> ParsedNumber | None:
    try:
        return normalize(raw)
    except InvalidNumber:
        return None


class Gate:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self._abandon_cap_state: dict[str, bool] = {}

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 8) -> "Gate":
        """dsn: "sqlite:///path/to.db" (or a bare path) or "postgresql://..."."""
        return cls(await open_ledger(dsn, pool_size=pool_size))

    @staticmethod
    def _request(number: str | ParsedNumber, campaign: CampaignContext, now: datetime) -> ReserveRequest:
        if isinstance(number, ParsedNumber):  # a lead's number, parsed once at import with its zones stored
            return ReserveRequest(number.e164, number, campaign.name, campaign.caller_id, campaign.rules, now)
        return ReserveRequest(number, _parse(number), campaign.name, campaign.caller_id, campaign.rules, now)

    @staticmethod
    def _decision(campaign: CampaignContext, verdict: Verdict, attempt_id: int | None) -> Decision:
        rules = campaign.rules
        return Decision(verdict.allowed, verdict.reason, verdict.next_allowed_at, rules.name, rules.version, attempt_id)

    async def reserve(self, number: str | ParsedNumber, campaign: CampaignContext, now: datetime) -> Decision:
        """Check and record the attempt atomically; the decision is audited either way.

        number: raw text (parsed here; unparseable -> invalid_number) or a ParsedNumber stored with the lead."""
        ref = await self.ledger.reserve(self._request(number, campaign, now))
        return self._decision(campaign, ref.verdict, ref.attempt_id)

    async def check(self, number: str | ParsedNumber, campaign: CampaignContext, now: datetime) -> Decision:
        """Dry run: the decision reserve would take now, recording nothing."""
        verdict = await self.ledger.check(self._request(number, campaign, now))
        return self._decision(campaign, verdict, None)

    async def record_outcome(self, attempt_id: int, outcome: str, sip_code: int | None, now: datetime) -> None:
        await self.ledger.record_outcome(attempt_id, outcome, sip_code, now)

    async def abandon_cap_active(self, campaign: CampaignContext, now: datetime) -> bool:
        """True: one more abandoned call would exceed the pack's rate over its window; pace progressively."""
        rules = campaign.rules
        if rules.abandon.max_rate is None:
            return False
        since = now - timedelta(seconds=rules.abandon.window_s)
        live, abandoned = await self.ledger.campaign_live_and_abandoned(campaign.name, since)
        active = abandon_cap_active(rules, live, abandoned)
        if self._abandon_cap_state.get(campaign.name) != active:
            # Each switch between predictive and progressive-only pacing is on record.
            self._abandon_cap_state[campaign.name] = active
            await self.ledger.append_audit(
                {
                    "kind": "abandon_cap", "at": now, "number": None, "campaign": campaign.name,
                    "verdict_allowed": not active, "reason": (Reason.abandon_cap if active else Reason.ok).value,
                    "rules": rules, "attempt_id": None,
                    "inputs": {"live_answered": live, "abandoned": abandoned, "max_rate": rules.abandon.max_rate},
                },
                key=f"campaign:{campaign.name}",
            )
        return active

    async def caller_id_allowed(self, campaign: CampaignContext, now: datetime) -> Decision:
        """May the campaign start with its caller ID? Audited; refused with caller_id_unregistered."""
        record = await self.ledger.caller_id(campaign.caller_id)
        reason = caller_id_reason(campaign.rules, record) or Reason.ok
        allowed = reason is Reason.ok
        await self.ledger.append_audit(
            {
                "kind": "caller_id", "at": now, "number": campaign.caller_id, "campaign": campaign.name,
                "verdict_allowed": allowed, "reason": reason.value, "rules": campaign.rules, "attempt_id": None,
                "inputs": {"registered": record is not None, "marketing": bool(record and record.marketing)},
            },
            key=campaign.caller_id,
        )
        return Decision(allowed, reason, None, campaign.rules.name, campaign.rules.version, None)

    async def close(self) -> None:
        await self.ledger.close()
