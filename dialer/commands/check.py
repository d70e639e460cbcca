"""`dialer check`: would a call to this number pass the compliance gate at this instant? A dry run."""

from __future__ import annotations

import json

from dialer.compliance_cli import BadInput, add_db_argument, fail, parse_instant, parse_number, run_with_ledger
from compliance.gate import CampaignContext, Gate
from compliance.packs import CallerIdRule, PackError, UnknownPack, load_pack


def register(subparsers) -> None:
    check = subparsers.add_parser("check", help="dry-run the compliance gate for one number (reserves nothing)")
    check.add_argument("--pack", required=True, help="rule pack: cn, us, uk, or any file in config/packs/")
    check.add_argument("--number", required=True, help="phone number, E.164 (+8613812348000)")
    check.add_argument("--at", required=True, help="instant, ISO 8601 with offset (2026-05-04T12:00:00+08:00)")
    check.add_argument("--campaign", default="check", help="campaign whose per-campaign caps and DNC list apply")
    check.add_argument("--caller-id", help="also check this caller ID's registration (skipped when omitted)")
    check.add_argument("--json", action="store_true", help='print {"allowed": ..., "reason": ..., "next_allowed_at": ...}')
    add_db_argument(check)
    check.set_defaults(handler=run_check)


def run_check(args) -> int:
    try:
        rules = load_pack(args.pack)
        number = parse_number(args.number)
        at = parse_instant(args.at)
    except (UnknownPack, PackError, BadInput) as exc:
        return fail(str(exc))
    if args.caller_id is None:
        rules = rules.model_copy(update={"caller_id": CallerIdRule()})
    campaign = CampaignContext(args.campaign, args.caller_id or "", rules)

    async def check(ledger) -> int:
        decision = await Gate(ledger).check(number, campaign, at)
        if args.json:
            print(json.dumps(decision.as_json()))
        else:
            verdict = "would pass" if decision.allowed else f"refused: {decision.reason.value}"
            after = f"; earliest at {decision.next_allowed_at.isoformat()}" if decision.next_allowed_at else ""
            print(f"{number} at {at.isoformat()} ({rules.name} {rules.version}): {verdict}{after}")
        return 0

    return run_with_ledger(args.db, check)
