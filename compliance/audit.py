"""The hash-chained audit log: how a row is hashed and how a chain is verified. Pure; the ledger stores rows.

Rows are spread over CHAINS independent chains (by number) so concurrent writers rarely wait for each other;
each chain links every row to the previous row's hash, and `audit_heads` keeps each chain's last seq and hash,
so an edited row, a deleted row in the middle or at the end are all detected.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass

__all__ = ["CHAINS", "GENESIS", "AuditRow", "chain_of", "row_hash", "verify_chain", "verify_rows"]

CHAINS = 64
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRow:
    chain: int
    seq: int
    at_us: int
    kind: str  # reserve | check | outcome | caller_id | import
    number: str | None
    campaign: str | None
    allowed: bool
    reason: str
    pack: str | None
    pack_version: str | None
    attempt_id: int | None
    inputs: str  # canonical JSON
    prev_hash: str
    hash: str = ""

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


AUDIT_COLUMNS = ", ".join(AuditRow.__slots__)  # the audit table's columns, in AuditRow's field order


def chain_of(key: str) -> int:
    return zlib.crc32(key.encode()) % CHAINS


def canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(row: AuditRow) -> str:
    material = canonical_json(
        [
            row.chain, row.seq, row.at_us, row.kind, row.number, row.campaign, bool(row.allowed), row.reason,
            row.pack, row.pack_version, row.attempt_id, row.inputs, row.prev_hash,
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def verify_chain(chain: int, rows: list[AuditRow], head: tuple[int, str] | None) -> list[str]:
    """Problems found in one chain's rows (ordered by seq) against its recorded head; empty when intact."""
    problems = []
    expected_seq, prev = 1, GENESIS
    for row in rows:
        if row.seq != expected_seq:
            problems.append(f"chain {chain}: rows {expected_seq}..{row.seq - 1} missing (deleted)")
        if row.prev_hash != prev:
            problems.append(f"chain {chain} seq {row.seq}: does not link to the previous row (row deleted or edited)")
        if row_hash(row) != row.hash:
            problems.append(f"chain {chain} seq {row.seq}: content does not match its hash (row edited)")
        expected_seq, prev = row.seq + 1, row.hash
    last = (rows[-1].seq, rows[-1].hash) if rows else (0, GENESIS)
    recorded = head or (0, GENESIS)
    if recorded != last:
        problems.append(
            f"chain {chain}: head records seq {recorded[0]} but the last row is seq {last[0]} (rows deleted at the end or head edited)"
        )
    return problems


def verify_rows(rows: list[AuditRow], heads: dict[int, tuple[int, str]]) -> list[str]:
    """Problems in every chain; rows ordered by (chain, seq). Empty list: the log is intact."""
    by_chain: dict[int, list[AuditRow]] = {}
    for row in rows:
        by_chain.setdefault(row.chain, []).append(row)
    problems = []
    for chain in sorted(set(by_chain) | set(heads)):
        problems.extend(verify_chain(chain, by_chain.get(chain, []), heads.get(chain)))
    return problems
