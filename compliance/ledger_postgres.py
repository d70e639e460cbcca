"""PostgreSQL ledger (asyncpg): a transaction-scoped advisory lock per audit chain serialises reservations.

A number always maps to the same chain (compliance.audit.chain_of), so the lock makes "read history, decide,
insert attempt, append audit" atomic per number across any number of connections and nodes, while numbers on
other chains proceed in parallel. Concurrent reservations are batched (group commit, at most one per number per
batch, up to one batch in flight per pooled connection): a batch costs six round trips whatever its size (BEGIN +
locks in chain order, load, DNC, chain heads, write, COMMIT), and no call returns before its commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta

import asyncpg

from compliance.audit import AUDIT_COLUMNS, AuditRow, chain_of
from compliance.ledger import (
    INVALID_VERDICT,
    LIVE_OUTCOMES,
    AttemptRef,
    Ledger,
    LedgerError,
    ReserveRequest,
    audit_row,
    decision_inputs,
    dnc_candidates,
    history_from_rows,
    next_number_state,
    outcome_state_update,
    settle_batch,
    to_us,
)
from compliance.rules import CallerIdRecord, ConsentRecord, DncEntry, History, Verdict, decide

__all__ = ["PostgresLedger", "SCHEMA"]

LOCK_NAMESPACE = 7401

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id BIGSERIAL PRIMARY KEY, number TEXT NOT NULL, campaign TEXT NOT NULL, at_us BIGINT NOT NULL,
    outcome TEXT, sip_code INTEGER, outcome_at_us BIGINT, source TEXT NOT NULL DEFAULT 'gate');
CREATE INDEX IF NOT EXISTS attempts_number_at ON attempts (number, at_us) INCLUDE (campaign);
CREATE INDEX IF NOT EXISTS attempts_campaign_at ON attempts (campaign, at_us) INCLUDE (outcome);
CREATE TABLE IF NOT EXISTS number_state (
    number TEXT PRIMARY KEY, refusals INTEGER NOT NULL DEFAULT 0, last_refusal_us BIGINT,
    invalid_us BIGINT, last_abandon_us BIGINT);
CREATE TABLE IF NOT EXISTS dnc (
    entry TEXT NOT NULL, is_prefix BOOLEAN NOT NULL, list_name TEXT NOT NULL, campaign TEXT NOT NULL DEFAULT '',
    added_us BIGINT NOT NULL, PRIMARY KEY (entry, is_prefix, list_name, campaign));
CREATE TABLE IF NOT EXISTS consents (
    id BIGSERIAL PRIMARY KEY, number TEXT NOT NULL, scope TEXT NOT NULL, channel TEXT NOT NULL,
    granted_us BIGINT NOT NULL, expires_us BIGINT, revoked_us BIGINT,
    UNIQUE (number, scope, channel, granted_us));
CREATE TABLE IF NOT EXISTS caller_ids (number TEXT PRIMARY KEY, marketing BOOLEAN NOT NULL, registered_us BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    chain INTEGER NOT NULL, seq BIGINT NOT NULL, at_us BIGINT NOT NULL, kind TEXT NOT NULL, number TEXT,
    campaign TEXT, allowed BOOLEAN NOT NULL, reason TEXT NOT NULL, pack TEXT, pack_version TEXT,
    attempt_id BIGINT, inputs TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq));
CREATE TABLE IF NOT EXISTS audit_heads (chain INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
"""


WRITE = f"""
WITH attempt AS (
    INSERT INTO attempts (id, number, campaign, at_us) SELECT $15::bigint, $5, $6, $16::bigint WHERE $15 IS NOT NULL),
audit_row AS (
    INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)),
head AS (
    INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, $2, $14)
    ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash)
SELECT 1
"""


LOAD_BATCH = """
SELECT r.number, a.ats, a.camps, s.refusals, s.last_refusal_us, s.invalid_us, s.last_abandon_us,
       c.scopes, c.channels, c.granted, c.expires, c.revoked, ci.marketing,
       CASE WHEN $5 THEN nextval('attempts_id_seq') END AS next_id
FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[]) AS r(number, since, need_consent, caller_id)
CROSS JOIN LATERAL (SELECT array_agg(at_us ORDER BY at_us) AS ats, array_agg(campaign ORDER BY at_us) AS camps
                    FROM attempts WHERE number = r.number AND at_us > r.since) a
CROSS JOIN LATERAL (SELECT array_agg(scope) AS scopes, array_agg(channel) AS channels, array_agg(granted_us) AS granted,
                           array_agg(expires_us) AS expires, array_agg(revoked_us) AS revoked
                    FROM consents WHERE r.need_consent AND number = r.number) c
LEFT JOIN number_state s ON s.number = r.number
LEFT JOIN caller_ids ci ON ci.number = r.caller_id
"""

WRITE_BATCH = f"""
WITH attempt AS (
    INSERT INTO attempts (id, number, campaign, at_us)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])),
audit_rows AS (
    INSERT INTO audit ({AUDIT_COLUMNS})
    SELECT * FROM unnest($5::int[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bool[],
                         $12::text[], $13::text[], $14::text[], $15::bigint[], $16::text[], $17::text[], $18::text[])
    RETURNING chain, seq, hash)
INSERT INTO audit_heads (chain, seq, hash)
SELECT DISTINCT ON (chain) chain, seq, hash FROM audit_rows ORDER BY chain, seq DESC
ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
"""

MAX_BATCH = 64


def _key(request: ReserveRequest) -> str:
    return request.number.e164 if request.number else request.raw


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def _zip(*columns):  # array_agg over no rows gives NULL
    return list(zip(*columns)) if columns[0] is not None else []


class PostgresLedger(Ledger):
    def __init__(self, pool: asyncpg.Pool, pool_size: int):
        self._pool = pool
        self._pool_size = pool_size
        self._pending: deque[tuple[ReserveRequest, asyncio.Future]] = deque()
        self._drainers = 0

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 8, schema: str | None = None) -> "PostgresLedger":
        """schema: keep the ledger's tables in this PostgreSQL schema (created if missing)."""
        settings = {"search_path": schema} if schema else None
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size, server_settings=settings)
        async with pool.acquire() as conn:
            await conn.execute(f"SELECT pg_advisory_lock({LOCK_NAMESPACE}, -1)")
            try:
                if schema:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                await conn.execute(SCHEMA)
            finally:
                await conn.execute(f"SELECT pg_advisory_unlock({LOCK_NAMESPACE}, -1)")
        return cls(pool, pool_size)

    @staticmethod
    def _history(row, request: ReserveRequest, dnc_rows: list) -> History:
        state = None if row["refusals"] is None else (row["refusals"], row["last_refusal_us"], row["invalid_us"], row["last_abandon_us"])
        return history_from_rows(
            _zip(row["ats"], row["camps"]),
            state,
            [tuple(d) for d in dnc_rows],
            _zip(row["scopes"], row["channels"], row["granted"], row["expires"], row["revoked"]),
            None if row["marketing"] is None else (row["marketing"],),
            request.caller_id,
        )

    async def reserve(self, request: ReserveRequest) -> AttemptRef:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._drainers < self._pool_size:
            self._drainers += 1
            asyncio.create_task(self._drain())
        return await future

    def _take_batch(self) -> list[tuple[ReserveRequest, asyncio.Future]]:
        """Up to MAX_BATCH pending requests, at most one per number (a repeat waits for the next batch)."""
        batch, later, seen = [], deque(), set()
        while self._pending and len(batch) < MAX_BATCH:
            item = self._pending.popleft()
            key = _key(item[0])
            (later if key in seen else batch).append(item)
            seen.add(key)
        self._pending.extendleft(reversed(later))
        return batch

    async def _drain(self) -> None:
        try:
            while self._pending:
                await settle_batch(self._take_batch(), self._reserve_batch)
        finally:
            self._drainers -= 1

    async def _reserve_batch(self, requests: list[ReserveRequest]) -> list[AttemptRef]:
        keys = [_key(r) for r in requests]
        chains = sorted({chain_of(k) for k in keys})
        parsed = [r for r in requests if r.number is not None]
        locks = "; ".join(f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {c})" for c in chains)
        async with self._pool.acquire() as conn:
            await conn.execute(f"BEGIN; {locks}")
            try:
                loaded = await self._load(conn, parsed, take_ids=True) if parsed else {}
                heads = {
                    r["chain"]: (r["seq"], r["hash"])
                    for r in await conn.fetch("SELECT chain, seq, hash FROM audit_heads WHERE chain = ANY($1::int[])", chains)
                }
                results, attempts, audits = [], [], []
                for request, key in zip(requests, keys):
                    if request.number is None:
                        verdict, attempt_id = INVALID_VERDICT, None
                    else:
                        row, history = loaded[key]
                        verdict = decide(request.number, request.rules, history, request.now, campaign=request.campaign)
                        attempt_id = row["next_id"] if verdict.allowed else None
                    if attempt_id is not None:
                        attempts.append((attempt_id, key, request.campaign, to_us(request.now)))
                    audit = audit_row(
                        kind="reserve", key=key, head=heads.get(chain_of(key)), at=request.now, number=key,
                        campaign=request.campaign, verdict_allowed=verdict.allowed, reason=verdict.reason.value,
                        rules=request.rules, attempt_id=attempt_id, inputs=decision_inputs(request, verdict),
                    )
                    heads[audit.chain] = (audit.seq, audit.hash)
                    audits.append(_audit_values(audit))
                    results.append(AttemptRef(attempt_id, verdict))
                await conn.execute(WRITE_BATCH, *_columns(attempts, 4), *_columns(audits, 14))
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return results

    @staticmethod
    def _batch_args(requests: list[ReserveRequest]) -> tuple:
        columns = ([], [], [], [])
        for request in requests:
            rules = request.rules
            needs_caller_id = rules.caller_id.registration_required or rules.caller_id.marketing_flag_required
            columns[0].append(request.number.e164)
            columns[1].append(to_us(request.now - timedelta(seconds=rules.history_horizon_s())))
            columns[2].append(rules.consent.required)
            columns[3].append(request.caller_id if needs_caller_id else None)
        return columns

    async def _load(self, conn, requests: list[ReserveRequest], *, take_ids: bool) -> dict[str, tuple]:
        """{e164: (row, History)} for parsed requests with distinct numbers: two round trips whatever their number.
        Reservations and dry-run checks both load through here."""
        rows = await conn.fetch(LOAD_BATCH, *self._batch_args(requests), take_ids)
        candidates = sorted({c for r in requests for c in dnc_candidates(r.number.e164)})
        dnc_rows = await conn.fetch(
            "SELECT entry, is_prefix, list_name, campaign FROM dnc WHERE entry = ANY($1::text[])", candidates
        )
        by_number = {r["number"]: r for r in rows}
        loaded = {}
        for request in requests:
            e164 = request.number.e164
            matching = [d for d in dnc_rows if e164.startswith(d["entry"])]
            loaded[e164] = (by_number[e164], self._history(by_number[e164], request, matching))
        return loaded

    async def check(self, request: ReserveRequest) -> Verdict:
        if request.number is None:
            return INVALID_VERDICT
        async with self._pool.acquire() as conn:
            _, history = (await self._load(conn, [request], take_ids=False))[request.number.e164]
        return decide(request.number, request.rules, history, request.now, campaign=request.campaign)

    async def _locked(self, key: str, fn, *args):
        """Run fn(conn, *args) in a transaction holding key's chain lock."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {chain_of(key)})")
                return await fn(conn, *args)

    async def _append(self, conn, *, key: str, **fields) -> None:
        head_row = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE chain = $1", chain_of(key))
        head = None if head_row is None else (head_row["seq"], head_row["hash"])
        row = audit_row(key=key, head=head, **fields)
        await conn.execute(WRITE, *_audit_values(row), None, None)

    async def _apply_outcome(self, conn, number: str, outcome: str, sip_code: int | None, at_us: int) -> None:
        state = await conn.fetchrow(
            "SELECT refusals, last_refusal_us, invalid_us, last_abandon_us FROM number_state WHERE number = $1", number
        )
        updated = next_number_state(None if state is None else tuple(state), outcome, sip_code, at_us)
        if updated is not None:
            await conn.execute(
                "INSERT INTO number_state VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number) DO UPDATE SET "
                "refusals = excluded.refusals, last_refusal_us = excluded.last_refusal_us, "
                "invalid_us = excluded.invalid_us, last_abandon_us = excluded.last_abandon_us",
                number, *updated,
            )

    async def record_outcome(self, attempt_id: int, outcome: str, sip_code: int | None, now: datetime) -> None:
        outcome_state_update(outcome, sip_code)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT number, campaign FROM attempts WHERE id = $1", attempt_id)
        if row is None:
            raise LedgerError(f"unknown attempt id {attempt_id}")
        await self._locked(row["number"], self._record_outcome, attempt_id, row["number"], row["campaign"], outcome, sip_code, now)

    async def _record_outcome(self, conn, attempt_id, number, campaign, outcome, sip_code, now) -> None:
        previous = await conn.fetchval("SELECT outcome FROM attempts WHERE id = $1", attempt_id)
        if previous is not None:
            raise LedgerError(f"attempt {attempt_id} already has outcome {previous!r}")
        await conn.execute(
            "UPDATE attempts SET outcome = $1, sip_code = $2, outcome_at_us = $3 WHERE id = $4",
            outcome, sip_code, to_us(now), attempt_id,
        )
        await self._apply_outcome(conn, number, outcome, sip_code, to_us(now))
        await self._append(
            conn, key=number, kind="outcome", at=now, number=number, campaign=campaign, verdict_allowed=True,
            reason=outcome, rules=None, attempt_id=attempt_id, inputs={"sip_code": sip_code},
        )

    async def add_attempt(self, e164, campaign, at, outcome, sip_code=None) -> int:
        if outcome is not None:
            outcome_state_update(outcome, sip_code)

        async def add(conn):
            attempt_id = await conn.fetchval(
                "INSERT INTO attempts (number, campaign, at_us, outcome, sip_code, outcome_at_us, source) "
                "VALUES ($1, $2, $3, $4, $5, $6, 'import') RETURNING id",
                e164, campaign, to_us(at), outcome, sip_code, to_us(at) if outcome else None,
            )
            if outcome is not None:
                await self._apply_outcome(conn, e164, outcome, sip_code, to_us(at))
            await self._append(
                conn, key=e164, kind="import", at=at, number=e164, campaign=campaign, verdict_allowed=True,
                reason=outcome or "attempt", rules=None, attempt_id=attempt_id, inputs={"sip_code": sip_code},
            )
            return attempt_id

        return await self._locked(e164, add)

    async def _insert_columns(self, sql: str, columns: list[list]) -> int:
        """Insert rows given as columns in one statement; returns how many were new."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(sql, *columns)
        return int(status.split()[-1])

    async def add_dnc(self, entries: list[DncEntry], now: datetime) -> int:
        columns = [[e.entry for e in entries], [e.is_prefix for e in entries], [e.list_name for e in entries],
                   [e.campaign or "" for e in entries]]
        return await self._insert_columns(
            "INSERT INTO dnc (entry, is_prefix, list_name, campaign, added_us) "
            "SELECT e, p, l, c, $5 FROM unnest($1::text[], $2::bool[], $3::text[], $4::text[]) AS t(e, p, l, c) "
            "ON CONFLICT DO NOTHING",
            [*columns, to_us(now)],
        )

    async def remove_dnc(self, entry: str, list_name: str, campaign: str | None) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM dnc WHERE entry = $1 AND list_name = $2 AND campaign = $3", entry, list_name, campaign or ""
            )
        return int(status.split()[-1])

    async def add_consents(self, number_consents: list[tuple[str, ConsentRecord]]) -> int:
        def micros(at):
            return None if at is None else to_us(at)

        columns = [
            [n for n, _ in number_consents], [c.scope for _, c in number_consents],
            [c.channel for _, c in number_consents], [to_us(c.granted_at) for _, c in number_consents],
            [micros(c.expires_at) for _, c in number_consents], [micros(c.revoked_at) for _, c in number_consents],
        ]
        return await self._insert_columns(
            "INSERT INTO consents (number, scope, channel, granted_us, expires_us, revoked_us) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) "
            "ON CONFLICT DO NOTHING",
            columns,
        )

    async def revoke_consent(self, e164: str, scope: str | None, at: datetime) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE consents SET revoked_us = $1 WHERE number = $2 AND ($3::text IS NULL OR scope = $3) AND revoked_us IS NULL",
                to_us(at), e164, scope,
            )
        return int(status.split()[-1])

    async def register_caller_id(self, e164: str, marketing: bool, now: datetime) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO caller_ids (number, marketing, registered_us) VALUES ($1, $2, $3) "
                "ON CONFLICT (number) DO UPDATE SET marketing = excluded.marketing",
                e164, marketing, to_us(now),
            )

    async def caller_id(self, e164: str) -> CallerIdRecord | None:
        async with self._pool.acquire() as conn:
            marketing = await conn.fetchval("SELECT marketing FROM caller_ids WHERE number = $1", e164)
        return None if marketing is None else CallerIdRecord(e164, marketing)

    async def campaign_live_and_abandoned(self, campaign: str, since: datetime) -> tuple[int, int]:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'abandoned') FROM attempts "
                "WHERE campaign = $1 AND at_us > $2 AND outcome = ANY($3::text[])",
                campaign, to_us(since), list(LIVE_OUTCOMES),
            )
        return int(row[0]), int(row[1])

    async def append_audit(self, row_fields: dict, key: str) -> None:
        async def append(conn):
            await self._append(conn, key=key, **row_fields)

        await self._locked(key, append)

    async def audit_rows(self) -> list[AuditRow]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY chain, seq")
        return [AuditRow(*r) for r in rows]

    async def audit_heads(self) -> dict[int, tuple[int, str]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT chain, seq, hash FROM audit_heads")
        return {r["chain"]: (r["seq"], r["hash"]) for r in rows}

    async def attempts_count(self) -> int:
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM attempts")

    async def close(self) -> None:
        await self._pool.close()


def _audit_values(row: AuditRow) -> tuple:
    return (
        row.chain, row.seq, row.at_us, row.kind, row.number, row.campaign, row.allowed, row.reason, row.pack,
        row.pack_version, row.attempt_id, row.inputs, row.prev_hash, row.hash,
    )
