"""The attempt ledger: the source of truth for "may this number be dialled now".

`Ledger` is the interface; `compliance.ledger_sqlite.SqliteLedger` and `compliance.ledger_postgres.PostgresLedger`
implement it and pass one shared test suite. `reserve` loads the number's history, calls the pure
`compliance.rules.decide`, records the attempt and appends the audit row in one transaction.
Times are stored as integer microseconds since the epoch (UTC) so both backends compare them identically.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from compliance.audit import GENESIS, AuditRow, canonical_json, chain_of, row_hash
from compliance.numbers import ParsedNumber
from compliance.packs import RulePack
from compliance.reasons import Reason
from compliance.rules import (
    AttemptRecord,
    CallerIdRecord,
    ConsentRecord,
    DncEntry,
    History,
    NumberState,
    Verdict,
)

__all__ = [
    "OUTCOMES",
    "INVALID_SIP_CODES",
    "AttemptRef",
    "Ledger",
    "LedgerError",
    "ReserveRequest",
    "from_us",
    "open_ledger",
    "to_us",
]

OUTCOMES = frozenset(
    {"answered", "refused", "busy", "no_answer", "invalid", "abandoned", "rejected", "congestion", "failed"}
)
INVALID_SIP_CODES = frozenset({404, 484, 604})
LIVE_OUTCOMES = ("answered", "refused", "abandoned")  # a person answered


class LedgerError(ValueError):
    pass


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_us(at: datetime) -> int:
    if at.tzinfo is None:
        raise LedgerError(f"naive datetime {at.isoformat()}: ledger times must be timezone-aware")
    return (at - _EPOCH) // _MICROSECOND


def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    raw: str
    number: ParsedNumber | None  # None: did not parse (decided invalid_number without touching history)
    campaign: str
    caller_id: str
    rules: RulePack
    now: datetime

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise LedgerError(f"naive datetime {self.now.isoformat()}: decisions need a timezone-aware instant")


@dataclass(frozen=True, slots=True)
class AttemptRef:
    attempt_id: int | None
    verdict: Verdict


def dnc_candidates(e164: str) -> list[str]:
    """Every entry that could match: the number itself and each of its prefixes ("+1", "+12", ...)."""
    return [e164[:end] for end in range(2, len(e164) + 1)]


def history_from_rows(
    attempts: list[tuple[int, str]],
    state: tuple | None,
    dnc_rows: list[tuple],
    consent_rows: list[tuple],
    caller_id_row: tuple | None,
    caller_id: str,
) -> History:
    """Build the pure History from the backend's rows (same shapes in SQLite and PostgreSQL)."""
    number_state = NumberState()
    if state is not None:
        refusals, last_refusal_us, invalid_us, last_abandon_us = state
        number_state = NumberState(refusals or 0, from_us(last_refusal_us), invalid_us is not None, from_us(last_abandon_us))
    return History(
        attempts=tuple(AttemptRecord(from_us(at_us), campaign) for at_us, campaign in attempts),
        state=number_state,
        dnc=tuple(DncEntry(entry, bool(is_prefix), list_name, campaign or None) for entry, is_prefix, list_name, campaign in dnc_rows),
        consents=tuple(
            ConsentRecord(scope, channel, from_us(granted), from_us(expires), from_us(revoked))
            for scope, channel, granted, expires, revoked in consent_rows
        ),
        caller_id=None if caller_id_row is None else CallerIdRecord(caller_id, bool(caller_id_row[0])),
    )


def audit_row(
    *,
    kind: str,
    key: str,
    head: tuple[int, str] | None,
    at: datetime,
    number: str | None,
    campaign: str | None,
    verdict_allowed: bool,
    reason: str,
    rules: RulePack | None,
    attempt_id: int | None,
    inputs: dict,
) -> AuditRow:
    """The next row of key's chain after `head` (seq, hash), with its hash filled in."""
    seq, prev = head if head is not None else (0, GENESIS)
    row = AuditRow(
        chain=chain_of(key),
        seq=seq + 1,
        at_us=to_us(at),
        kind=kind,
        number=number,
        campaign=campaign,
        allowed=verdict_allowed,
        reason=reason,
        pack=rules.name if rules else None,
        pack_version=rules.version if rules else None,
        attempt_id=attempt_id,
        inputs=canonical_json(inputs),
        prev_hash=prev,
    )
    return replace(row, hash=row_hash(row))


def decision_inputs(request: ReserveRequest, verdict: Verdict) -> dict:
    inputs = dict(verdict.inputs)
    inputs["caller_id"] = request.caller_id
    if verdict.next_allowed_at is not None:
        inputs["next_allowed_at"] = verdict.next_allowed_at.isoformat()
    return inputs


INVALID_VERDICT = Verdict(False, Reason.invalid_number, None, {"parse": "failed"})


class Ledger(abc.ABC):
    """Attempts, number state, DNC, consents, caller IDs and the audit log of one database."""

    @abc.abstractmethod
    async def reserve(self, request: ReserveRequest) -> AttemptRef:
        """Decide and, if allowed, record the attempt; audit the decision; all in one transaction."""

    @abc.abstractmethod
    async def check(self, request: ReserveRequest) -> Verdict:
        """The same decision as reserve, recording nothing."""

    @abc.abstractmethod
    async def record_outcome(self, attempt_id: int, outcome: str, sip_code: int | None, now: datetime) -> None: ...

    @abc.abstractmethod
    async def add_attempt(self, e164: str, campaign: str, at: datetime, outcome: str | None, sip_code: int | None = None) -> int:
        """Import a past attempt (from a previous system), with its outcome applied like a live one."""

    @abc.abstractmethod
    async def add_dnc(self, entries: list[DncEntry], now: datetime) -> int: ...

    @abc.abstractmethod
    async def remove_dnc(self, entry: str, list_name: str, campaign: str | None) -> int: ...

    @abc.abstractmethod
    async def add_consents(self, number_consents: list[tuple[str, ConsentRecord]]) -> int: ...

    @abc.abstractmethod
    async def revoke_consent(self, e164: str, scope: str | None, at: datetime) -> int: ...

    @abc.abstractmethod
    async def register_caller_id(self, e164: str, marketing: bool, now: datetime) -> None: ...

    @abc.abstractmethod
    async def caller_id(self, e164: str) -> CallerIdRecord | None: ...

    @abc.abstractmethod
    async def campaign_live_and_abandoned(self, campaign: str, since: datetime) -> tuple[int, int]: ...

    @abc.abstractmethod
    async def append_audit(self, row_fields: dict, key: str) -> None:
        """Append one non-reservation event (caller-ID check, ...) to key's chain."""

    @abc.abstractmethod
    async def audit_rows(self) -> list[AuditRow]: ...

    @abc.abstractmethod
    async def audit_heads(self) -> dict[int, tuple[int, str]]: ...

    @abc.abstractmethod
    async def attempts_count(self) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


def outcome_state_update(outcome: str, sip_code: int | None) -> tuple[bool, bool, bool]:
    """(counts as a refusal, marks the number invalid, counts as an abandon)."""
    if outcome not in OUTCOMES:
        raise LedgerError(f"unknown outcome {outcome!r}; expected one of {', '.join(sorted(OUTCOMES))}")
    return outcome == "refused", outcome == "invalid" or sip_code in INVALID_SIP_CODES, outcome == "abandoned"


def next_number_state(state: tuple | None, outcome: str, sip_code: int | None, at_us: int) -> tuple | None:
    """The number_state row (refusals, last_refusal_us, invalid_us, last_abandon_us) after an outcome at at_us,
    or None when the outcome changes nothing."""
    refusal, invalid, abandoned = outcome_state_update(outcome, sip_code)
    if not (refusal or invalid or abandoned):
        return None
    refusals, last_refusal_us, invalid_us, last_abandon_us = state or (0, None, None, None)
    if refusal:
        refusals, last_refusal_us = refusals + 1, max(last_refusal_us or at_us, at_us)
    if invalid and invalid_us is None:
        invalid_us = at_us
    if abandoned:
        last_abandon_us = max(last_abandon_us or at_us, at_us)
    return refusals, last_refusal_us, invalid_us, last_abandon_us


async def settle_batch(batch: list, work) -> None:
    """Run `await work(requests)` for a batch of (request, future) and resolve every future with its result.
    If a batch fails (it was rolled back), each request is retried alone so one bad request fails only itself."""
    try:
        results = await work([request for request, _ in batch])
    except Exception as exc:
        if len(batch) > 1:
            for item in batch:
                await settle_batch([item], work)
            return
        if not batch[0][1].done():
            batch[0][1].set_exception(exc)
        return
    except BaseException as exc:  # cancelled: every waiter must hear about it
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
        raise
    for (_, future), result in zip(batch, results):
        if not future.done():
            future.set_result(result)


SQLITE_SYNCHRONOUS = ("full", "normal")


def sqlite_path(dsn: str) -> tuple[str, str]:
    """'sqlite:///var/demo.db' -> ('var/demo.db', 'full'); 'sqlite:////abs.db?synchronous=normal' -> ('/abs.db',
    'normal'); a bare path is kept. synchronous=full (default) survives power loss; normal survives a crash of the
    process (kill -9) but may lose the last commits on power loss, for fewer fsyncs."""
    if dsn.startswith("sqlite://") and not dsn.startswith("sqlite:///"):
        raise LedgerError(f"bad sqlite DSN {dsn!r}: use sqlite:///relative/path or sqlite:////absolute/path")
    path = dsn[len("sqlite:///"):] if dsn.startswith("sqlite:///") else dsn
    path, _, query = path.partition("?")
    synchronous = "full"
    for option in filter(None, query.split("&")):
        key, _, value = option.partition("=")
        if key != "synchronous" or value not in SQLITE_SYNCHRONOUS:
            raise LedgerError(f"bad sqlite DSN option {option!r}: only synchronous=full|normal is known")
        synchronous = value
    return path, synchronous


async def open_ledger(dsn: str, *, pool_size: int = 8) -> Ledger:
    """'sqlite:///path', a bare file path, or 'postgresql://...'."""
    if dsn.startswith(("postgresql://", "postgres://")):
        from compliance.ledger_postgres import PostgresLedger

        return await PostgresLedger.open(dsn, pool_size=pool_size)
    from compliance.ledger_sqlite import SqliteLedger

    path, synchronous = sqlite_path(dsn)
    return await SqliteLedger.open(path, synchronous=synchronous)
