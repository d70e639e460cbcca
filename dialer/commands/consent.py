"""`dialer consent add|import|revoke`: consent records with channel, grant time, scope and expiry."""

from __future__ import annotations

from dialer.compliance_cli import (
    BadInput, add_db_argument, now_utc, parse_instant, parse_number, read_csv, report_import, run_with_ledger,
)
from compliance.rules import ConsentRecord


def register(subparsers) -> None:
    consent = subparsers.add_parser("consent", help="consent records")
    actions = consent.add_subparsers(dest="consent_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="record one consent")
    add.add_argument("--number", required=True)
    add.add_argument("--granted-at", required=True, help="ISO 8601 with offset")
    add.add_argument("--expires-at", help="ISO 8601 with offset; consent no longer holds from this instant")
    add.add_argument("--channel", required=True, help="how it was obtained: web, sms, call, paper ...")
    add.add_argument("--scope", default="marketing", help="what it covers: marketing (default) or a campaign name")
    add_db_argument(add)
    add.set_defaults(handler=add_consent)
    imports = actions.add_parser("import", help="CSV columns: number, granted_at, channel[, expires_at, scope]")
    imports.add_argument("file")
    add_db_argument(imports)
    imports.set_defaults(handler=import_consents)
    revoke = actions.add_parser("revoke", help="revoke a number's consents")
    revoke.add_argument("--number", required=True)
    revoke.add_argument("--scope", help="only this scope (default: every scope)")
    revoke.add_argument("--at", help="revocation instant, ISO 8601 (default: now)")
    add_db_argument(revoke)
    revoke.set_defaults(handler=revoke_consent)


def consent_from(number: str, granted: str, expires: str | None, channel: str, scope: str, prefix: str = "--") -> tuple[str, ConsentRecord]:
    e164 = parse_number(number, f"{prefix}number")
    granted_at = parse_instant(granted, f"{prefix}granted{'-' if prefix else '_'}at")
    expires_at = parse_instant(expires, f"{prefix}expires{'-' if prefix else '_'}at") if expires else None
    if not channel:
        raise BadInput(f"{prefix}channel: required")
    if expires_at is not None and expires_at <= granted_at:
        raise BadInput(f"{prefix}expires{'-' if prefix else '_'}at: must be after the grant time")
    return e164, ConsentRecord(scope or "marketing", channel, granted_at, expires_at)


def add_consent(args) -> int:
    async def add(ledger) -> int:
        record = consent_from(args.number, args.granted_at, args.expires_at, args.channel, args.scope)
        new = await ledger.add_consents([record])
        print(f"consent {'recorded' if new else 'already recorded'} ({record[1].scope}, {record[1].channel})")
        return 0

    return run_with_ledger(args.db, add)


def import_consents(args) -> int:
    async def do_import(ledger) -> int:
        records, problems = [], []
        for row in read_csv(args.file, ("number", "granted_at", "channel")):
            v = row.values
            try:
                records.append(consent_from(v["number"], v["granted_at"], v.get("expires_at"), v["channel"], v.get("scope", ""), prefix=""))
            except BadInput as exc:
                problems.append(f"line {row.line}: {exc}")
        new = await ledger.add_consents(records) if records else 0
        return report_import(args.file, len(records), new, problems)

    return run_with_ledger(args.db, do_import)


def revoke_consent(args) -> int:
    async def revoke(ledger) -> int:
        at = parse_instant(args.at) if args.at else now_utc()
        count = await ledger.revoke_consent(parse_number(args.number), args.scope, at)
        print(f"{count} consent record(s) revoked")
        return 0

    return run_with_ledger(args.db, revoke)
