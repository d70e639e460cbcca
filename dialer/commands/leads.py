"""`dialer leads import FILE --campaign NAME`, `dialer leads status|list --campaign NAME` and
`dialer leads recycle --campaign NAME --outcomes no_answer,busy [--due ISO]`."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import datetime, timezone

import phonenumbers

from compliance.numbers import mask_number
from dialer.config import ConfigError
from dialer.leads_csv import LeadFileError, import_leads, open_lead_file, region_of
from dialer.storage.models import LEAD_STATUSES, RECYCLABLE_OUTCOMES, recycle_problem
from dialer.storage.options import (
    DatabaseChoice,
    DatabaseUnavailable,
    add_database_options,
    database_from_args,
    with_store,
)

CAMPAIGN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
EXIT_ROWS_REJECTED = 1
EXIT_UNUSABLE = 2


def register(subparsers) -> None:
    leads = subparsers.add_parser("leads", help="lead lists")
    actions = leads.add_subparsers(dest="leads_action", metavar="ACTION", required=True)

    importing = actions.add_parser(
        "import", help="import a CSV lead list (header row; a 'number' column; other columns kept as fields)"
    )
    importing.add_argument("file")
    importing.add_argument("--campaign", required=True)
    importing.add_argument(
        "--default-region", metavar="CC",
        help="ISO country for numbers written without +CC (default: the campaign caller ID's country with --config)",
    )
    add_database_options(importing)
    importing.set_defaults(handler=run_import)

    listing = actions.add_parser("list", help="a campaign's leads (numbers masked)")
    listing.add_argument("--campaign", required=True)
    listing.add_argument("--status", choices=LEAD_STATUSES)
    listing.add_argument("--limit", type=int, default=100, help="at most this many leads (default 100)")
    add_database_options(listing)
    listing.set_defaults(handler=run_list)

    status = actions.add_parser("status", help="a campaign's leads by status")
    status.add_argument("--campaign", required=True)
    add_database_options(status)
    status.set_defaults(handler=run_status)

    recycle = actions.add_parser(
        "recycle", help="reopen closed leads whose last outcome is one of --outcomes, attempts reset, for a new pass"
    )
    recycle.add_argument("--campaign", required=True)
    recycle.add_argument(
        "--outcomes", required=True, metavar="LIST",
        help=f"comma-separated last outcomes to recycle, of: {', '.join(RECYCLABLE_OUTCOMES)}",
    )
    recycle.add_argument(
        "--due", metavar="ISO", help="when the reopened leads are due (ISO 8601 with offset; default: now)"
    )
    add_database_options(recycle)
    recycle.set_defaults(handler=run_recycle)


class UsageProblem(Exception):
    pass


def _campaign_and_region(args, choice: DatabaseChoice) -> tuple[str, str | None]:
    region = args.default_region.upper() if getattr(args, "default_region", None) else None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageProblem(f"--default-region: {args.default_region!r} is not an ISO 3166 country code phonenumbers knows")
    if choice.config is None:
        if not CAMPAIGN_NAME.match(args.campaign):
            raise UsageProblem(f"--campaign: {args.campaign!r} may only hold letters, digits, '_', '.' and '-'")
        return args.campaign, region
    campaigns = {c.name: c for c in choice.config.campaigns}
    if args.campaign not in campaigns:
        known = ", ".join(sorted(campaigns)) or "none"
        raise UsageProblem(f"--campaign: {args.campaign!r} is not in {args.config} (campaigns: {known})")
    return args.campaign, region or region_of(campaigns[args.campaign].caller_id)


def _resolve(args) -> tuple[DatabaseChoice, str, str | None] | int:
    try:
        choice = database_from_args(args)
        campaign, region = _campaign_and_region(args, choice)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNUSABLE
    except UsageProblem as exc:
        print(f"dialer leads: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return choice, campaign, region


def run_import(args) -> int:
    resolved = _resolve(args)
    if isinstance(resolved, int):
        return resolved
    choice, campaign, region = resolved
    try:
        stream = open_lead_file(args.file)
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNUSABLE

    async def run(store):
        return await import_leads(store, campaign, stream, datetime.now(timezone.utc), default_region=region)

    with stream:
        try:
            summary = asyncio.run(with_store(choice, run))
        except LeadFileError as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE
        except DatabaseUnavailable as exc:
            print(f"dialer leads: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE
    for error in summary.errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    print(f"{args.file} -> campaign {campaign}: {summary}")
    return EXIT_ROWS_REJECTED if summary.errors else 0


def _query(args, query):
    """Run query(store, campaign) on the chosen database; an int is an exit code after a reported problem."""
    resolved = _resolve(args)
    if isinstance(resolved, int):
        return resolved
    choice, campaign, _ = resolved
    try:
        return campaign, asyncio.run(with_store(choice, lambda store: query(store, campaign)))
    except DatabaseUnavailable as exc:
        print(f"dialer leads: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


def run_status(args) -> int:
    answer = _query(args, lambda store, campaign: store.count_leads(campaign))
    if isinstance(answer, int):
        return answer
    campaign, counts = answer
    print(f"campaign {campaign}: " + ", ".join(f"{status} {count}" for status, count in counts.items()))
    return 0


def run_list(args) -> int:
    answer = _query(args, lambda store, campaign: store.list_leads(campaign, status=args.status, limit=args.limit))
    if isinstance(answer, int):
        return answer
    _, leads = answer
    print("id\tnumber\tstatus\tattempts\tnext_attempt_at\ttime_zones\tlast_outcome\tpasses")
    for lead in leads:
        due = lead.next_attempt_at.isoformat() if lead.next_attempt_at else "-"
        print(f"{lead.id}\t{mask_number(lead.e164)}\t{lead.status}\t{lead.attempts}\t{due}\t{','.join(lead.time_zones)}"
              f"\t{lead.last_outcome or '-'}\t{lead.passes}")
    return 0


def _recycle_choice(args) -> tuple[list[str], datetime]:
    outcomes = [outcome.strip() for outcome in args.outcomes.split(",") if outcome.strip()]
    problem = recycle_problem(outcomes)
    if problem:
        raise UsageProblem(f"--outcomes: {problem}")
    if args.due is None:
        return outcomes, datetime.now(timezone.utc)
    try:
        due = datetime.fromisoformat(args.due)
    except ValueError:
        raise UsageProblem(f"--due: {args.due!r} is not an ISO 8601 time") from None
    if due.tzinfo is None:
        raise UsageProblem(f"--due: {args.due!r} has no UTC offset (write e.g. 2026-03-02T09:00:00+00:00)")
    return outcomes, due


def run_recycle(args) -> int:
    try:
        outcomes, due = _recycle_choice(args)
    except UsageProblem as exc:
        print(f"dialer leads: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    answer = _query(args, lambda store, campaign: store.recycle_leads(campaign, outcomes, due))
    if isinstance(answer, int):
        return answer
    campaign, reopened = answer
    print(f"campaign {campaign}: recycled {reopened} leads ({', '.join(outcomes)}), due {due.isoformat()}")
    return 0
