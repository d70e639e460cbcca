"""`dialer callerid add`: register a campaign caller ID (and its marketing flag) for packs that demand it."""

from __future__ import annotations

from dialer.compliance_cli import add_db_argument, now_utc, parse_number, run_with_ledger


def register(subparsers) -> None:
    callerid = subparsers.add_parser("callerid", help="caller-ID registrations")
    actions = callerid.add_subparsers(dest="callerid_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register (or re-flag) a caller ID")
    add.add_argument("--number", required=True)
    add.add_argument("--marketing", action="store_true", help="the registration is flagged for marketing calls")
    add_db_argument(add)
    add.set_defaults(handler=add_caller_id)


def add_caller_id(args) -> int:
    async def add(ledger) -> int:
        number = parse_number(args.number)
        await ledger.register_caller_id(number, args.marketing, now_utc())
        print(f"caller ID {number} registered{' (marketing)' if args.marketing else ''}")
        return 0

    return run_with_ledger(args.db, add)
