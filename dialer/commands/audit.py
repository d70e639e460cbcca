"""`dialer audit verify|export`: check the hash chains of the decision log; export it."""

from __future__ import annotations

import csv
import json
import sys

from compliance.audit import AuditRow, verify_rows
from dialer.compliance_cli import add_db_argument, run_with_ledger
from compliance.ledger import from_us


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="the compliance decision log")
    actions = audit.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="detect edited or deleted rows (exit 1 if any)")
    add_db_argument(verify)
    verify.set_defaults(handler=verify_log)
    export = actions.add_parser("export", help="write every row, oldest first per chain")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", help="file to write (default: standard output)")
    add_db_argument(export)
    export.set_defaults(handler=export_log)


def verify_log(args) -> int:
    async def verify(ledger) -> int:
        rows, heads = await ledger.audit_rows(), await ledger.audit_heads()
        problems = verify_rows(rows, heads)
        for problem in problems:
            print(problem)
        chains = len({r.chain for r in rows})
        print(f"{'TAMPERED' if problems else 'intact'}: {len(rows)} rows in {chains} chains, {len(problems)} problems")
        return 1 if problems else 0

    return run_with_ledger(args.db, verify)


def _export_dict(row: AuditRow) -> dict:
    values = row.as_dict()
    values["at"] = from_us(row.at_us).isoformat()
    return values


def export_log(args) -> int:
    async def export(ledger) -> int:
        rows = await ledger.audit_rows()
        out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
        try:
            if args.format == "jsonl":
                for row in rows:
                    out.write(json.dumps(_export_dict(row)) + "\n")
            else:
                writer = csv.DictWriter(out, fieldnames=[*AuditRow.__slots__, "at"])
                writer.writeheader()
                writer.writerows(_export_dict(r) for r in rows)
        finally:
            if args.output:
                out.close()
        return 0

    return run_with_ledger(args.db, export)
