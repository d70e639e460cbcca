"""Serve the core's RequestLeads: claim due leads from the hopper, reserve each with the gate."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from compliance.numbers import ParsedNumber
from dialer.core import events as ev
from dialer.leads_csv import region_of

if TYPE_CHECKING:
    from dialer.runtime.engine import Engine

log = logging.getLogger("dialer.runtime.leads")

MAX_CLAIM_ROUNDS = 4  # refused leads are replaced by claiming again, a bounded number of times per request


async def serve_lead_request(engine: "Engine", request: ev.RequestLeads) -> None:
    """Every lead handed to the core is reserved in the ledger first (committed before its INVITE); a refused
    lead goes back to the core as LeadRefused (the gate has audited it) and is rescheduled or closed there."""
    from dialer.runtime.engine import utc_now

    granted: list[ev.GrantedLead] = []
    try:
        now = utc_now()
        context = engine.contexts[request.campaign]
        for _ in range(MAX_CLAIM_ROUNDS):
            leads = await engine.store.claim_leads(request.campaign, now, request.count - len(granted))
            for lead in leads:
                number = ParsedNumber(lead.e164, region_of(lead.e164), lead.time_zones)
                decision = await engine.gate.reserve(number, context, now)
                if decision.allowed:
                    granted.append(ev.GrantedLead(lead.id, lead.e164, decision.attempt_id, lead.attempts + 1))
                    continue
                at = decision.next_allowed_at
                engine.post(ev.LeadRefused(request.campaign, lead.id, decision.reason.value,
                                           None if at is None else engine.clock.monotonic(at)))
            if not leads and not granted:
                await _recycle_when_dry(engine, request.campaign, now)
            if not leads or len(granted) >= request.count:
                break
    finally:
        # Always answered, so that the core's pending request is settled even when the store failed midway.
        engine.post(ev.LeadsGranted(request.campaign, request.request_id, tuple(granted)))


async def _recycle_when_dry(engine: "Engine", campaign: str, now: datetime) -> None:
    """Automatic list recycling (retry.recycle): the campaign has no due lead, so closed leads whose last outcome
    was chosen are reopened, due recycle_after_s from now; the gate still decides each dial."""
    recycle = engine.core.campaigns[campaign].settings.retry.recycle
    if recycle is None:
        return
    due = now + timedelta(seconds=recycle.recycle_after_s)
    reopened = await engine.store.recycle_leads(campaign, recycle.outcomes, due, max_passes=recycle.max_passes)
    if reopened:
        log.info("campaign %s: recycled %d closed leads (%s), due %s", campaign, reopened,
                 ",".join(recycle.outcomes), due.isoformat())
