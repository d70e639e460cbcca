"""`dialer attempts add`: import one past attempt (from a previous system) into the ledger."""

from __future__ import annotations

from dialer.compliance_cli import add_db_argument, parse_instant, parse_number, run_with_ledger
from compliance.ledger import OUTCOMES


def register(subparsers) -> None:
    attempts = subparsers.add_parser("attempts", help="attempt history in the compliance ledger")
    actions = attempts.add_subparsers(dest="attempts_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="record a past attempt and its outcome")
    add.add_argument("--number", required=True)
    add.add_argument("--at", required=True, help="ISO 8601 with offset")
    add.add_argument("--outcome", required=True, choices=sorted(OUTCOMES))
    add.add_argument("--sip-code", type=int, help="final SIP response code (404, 484, 604 mark the number invalid)")
    add.add_argument("--campaign", default="imported")
    add_db_argument(add)
    add.set_defaults(handler=add_attempt)


def add_attempt(args) -> int:
    async def add(ledger) -> int:
        number, at = parse_number(args.number), parse_instant(args.at)
        attempt_id = await ledger.add_attempt(number, args.campaign, at, args.outcome, args.sip_code)
        print(f"attempt {attempt_id} recorded: {args.outcome} at {at.isoformat()}")
        return 0

    return run_with_ledger(args.db, add)
