"""`dialer dnc add|remove|import`: do-not-call entries (internal, per campaign, national lists, prefixes)."""

from __future__ import annotations

from dialer.compliance_cli import BadInput, add_db_argument, now_utc, parse_number, read_csv, report_import, run_with_ledger
from compliance.rules import DncEntry


def register(subparsers) -> None:
    dnc = subparsers.add_parser("dnc", help="do-not-call lists")
    actions = dnc.add_subparsers(dest="dnc_action", metavar="ACTION", required=True)
    for name, help_text in (("add", "add a number or a prefix (+1202555*)"), ("remove", "remove an entry")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--number", required=True, help="E.164 number, or a prefix ending in * (+1202555*)")
        _list_arguments(action)
    imports = actions.add_parser("import", help="import a CSV with a 'number' column (prefixes end in *)")
    imports.add_argument("file")
    _list_arguments(imports)
    actions.choices["add"].set_defaults(handler=add_entry)
    actions.choices["remove"].set_defaults(handler=remove_entry)
    imports.set_defaults(handler=import_entries)


def _list_arguments(parser) -> None:
    parser.add_argument("--list", default="internal", help="list name: internal (default), national-us, ...")
    parser.add_argument("--campaign", help="only for this campaign (default: every campaign)")
    add_db_argument(parser)


def parse_entry(text: str, list_name: str, campaign: str | None, field: str = "--number") -> DncEntry:
    text = text.strip()
    if text.endswith("*"):
        prefix = text[:-1].replace(" ", "")
        if not (prefix.startswith("+") and prefix[1:].isdigit() and len(prefix) >= 3):
            raise BadInput(f"{field}: prefix {text!r} must be '+' and at least two digits followed by '*'")
        return DncEntry(prefix, True, list_name, campaign)
    return DncEntry(parse_number(text, field), False, list_name, campaign)


def add_entry(args) -> int:
    async def add(ledger) -> int:
        entry = parse_entry(args.number, args.list, args.campaign)
        added = await ledger.add_dnc([entry], now_utc())
        print(f"{'added' if added else 'already listed'}: {entry.entry}{'*' if entry.is_prefix else ''} on {args.list}")
        return 0

    return run_with_ledger(args.db, add)


def remove_entry(args) -> int:
    async def remove(ledger) -> int:
        entry = parse_entry(args.number, args.list, args.campaign)
        removed = await ledger.remove_dnc(entry.entry, args.list, args.campaign)
        print(f"{'removed' if removed else 'not listed'}: {entry.entry} from {args.list}")
        return 0

    return run_with_ledger(args.db, remove)


def import_entries(args) -> int:
    async def do_import(ledger) -> int:
        entries, problems = [], []
        for row in read_csv(args.file, ("number",)):
            try:
                entries.append(parse_entry(row.values["number"], args.list, args.campaign, field="number"))
            except BadInput as exc:
                problems.append(f"line {row.line}: {exc}")
        new = await ledger.add_dnc(entries, now_utc()) if entries else 0
        return report_import(args.file, len(entries), new, problems)

    return run_with_ledger(args.db, do_import)
