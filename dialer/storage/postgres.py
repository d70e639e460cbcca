"""PostgreSQL store (asyncpg pool): several engine nodes share one database.

The hopper claim locks the due rows it picks with FOR UPDATE SKIP LOCKED, so concurrent claims from other nodes
skip them instead of waiting or double-claiming. Schema migrations run under an advisory lock so that nodes
starting together apply each step once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from dialer.storage.base import (
    ATTEMPTS_AFTER_RELEASE,
    Store,
    check_campaign_state,
    check_cdr_update,
    check_final_status,
    check_outcome,
    check_recycle_outcomes,
    utc,
)
from dialer.storage.migrations import pending_steps, schema_version_table
from dialer.storage.models import (
    CDR_COLUMNS,
    LEAD_STATUSES,
    AddLeadsResult,
    Campaign,
    CampaignState,
    Cdr,
    Disposition,
    Lead,
    NewLead,
)

LEAD_COLUMNS = (
    "id, campaign, e164, raw_number, time_zones, status, attempts, next_attempt_at, priority, fields, claimed_by,"
    " last_outcome, passes"
)
MIGRATION_LOCK_KEY = 0x6469616C6572  # "dialer"


def lead_from_record(record: asyncpg.Record) -> Lead:
    return Lead(
        id=record["id"],
        campaign=record["campaign"],
        e164=record["e164"],
        raw_number=record["raw_number"],
        time_zones=tuple(record["time_zones"]),
        status=record["status"],
        attempts=record["attempts"],
        next_attempt_at=record["next_attempt_at"],
        priority=record["priority"],
        fields=record["fields"],
        claimed_by=record["claimed_by"],
        last_outcome=record["last_outcome"],
        passes=record["passes"],
    )


def cdr_from_record(record: asyncpg.Record) -> Cdr:
    return Cdr(**{column: record[column] for column in CDR_COLUMNS})


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PostgresStore(Store):
    def __init__(self, pool: asyncpg.Pool, node: str):
        self._pool = pool
        self.node = node

    @classmethod
    async def open(cls, dsn: str, *, node: str, pool_max_size: int = 10) -> "PostgresStore":
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_max_size, init=_init_connection)
        try:
            store = cls(pool, node)
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await connection.execute(schema_version_table("postgresql"))
            applied = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for version, statements in pending_steps("postgresql", applied):
                for statement in statements:
                    await connection.execute(statement)
                await connection.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, now())", version)

    async def schema_version(self) -> int:
        return await self._pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")

    # campaigns
    async def set_campaign_state(self, name: str, state: CampaignState, now: datetime) -> Campaign:
        check_campaign_state(state)
        await self._pool.execute(
            "INSERT INTO campaigns (name, state, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            name, state, utc(now),
        )
        return Campaign(name, state, utc(now))

    async def get_campaign(self, name: str) -> Campaign | None:
        record = await self._pool.fetchrow("SELECT name, state, updated_at FROM campaigns WHERE name = $1", name)
        return Campaign(record["name"], record["state"], record["updated_at"]) if record else None

    async def list_campaigns(self) -> list[Campaign]:
        records = await self._pool.fetch("SELECT name, state, updated_at FROM campaigns ORDER BY name")
        return [Campaign(r["name"], r["state"], r["updated_at"]) for r in records]

    # leads
    async def add_leads(self, campaign: str, leads: Iterable[NewLead], now: datetime) -> AddLeadsResult:
        rows = [
            (campaign, lead.e164, lead.raw_number, json.dumps(list(lead.time_zones)), lead.priority,
             json.dumps(lead.fields), utc(now), utc(now))
            for lead in leads
        ]
        if not rows:
            return AddLeadsResult(0, 0)
        columns = list(zip(*rows))
        inserted = await self._pool.fetchval(
            "WITH added AS (INSERT INTO leads (campaign, e164, raw_number, time_zones, priority, fields,"
            " next_attempt_at, created_at)"
            " SELECT c, e, r, z::jsonb, p, f::jsonb, n, a FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[]) AS u(c, e, r, z, p, f, n, a)"
            " ON CONFLICT (campaign, e164) DO NOTHING RETURNING 1) SELECT COUNT(*) FROM added",
            *columns,
        )
        return AddLeadsResult(inserted, len(rows) - inserted)

    async def get_lead(self, lead_id: int) -> Lead | None:
        record = await self._pool.fetchrow(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1", lead_id)
        return lead_from_record(record) if record else None

    async def list_leads(self, campaign: str, *, status: str | None = None, limit: int = 1000) -> list[Lead]:
        records = await self._pool.fetch(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE campaign = $1 AND ($2::text IS NULL OR status = $2)"
            " ORDER BY id LIMIT $3",
            campaign, status, limit,
        )
        return [lead_from_record(r) for r in records]

    async def count_leads(self, campaign: str) -> dict[str, int]:
        records = await self._pool.fetch(
            "SELECT status, COUNT(*) AS n FROM leads WHERE campaign = $1 GROUP BY status", campaign
        )
        return {status: 0 for status in LEAD_STATUSES} | {r["status"]: r["n"] for r in records}

    async def claim_leads(self, campaign: str, now: datetime, limit: int) -> list[Lead]:
        """Walks the campaign's priorities from the top (one index seek each), taking due leads of each in due order,
        so the cost stays with the leads claimed however many wait for later at a higher priority."""
        if limit <= 0:
            return []
        claimed: list[Lead] = []
        returning = ", ".join("leads." + column for column in LEAD_COLUMNS.split(", "))
        async with self._pool.acquire() as connection, connection.transaction():
            priority: int | None = None
            while len(claimed) < limit:
                below = "" if priority is None else "AND priority < $2"
                params = (campaign,) if priority is None else (campaign, priority)
                priority = await connection.fetchval(
                    f"SELECT priority FROM leads WHERE campaign = $1 AND status IN ('new', 'scheduled') {below}"
                    " ORDER BY priority DESC LIMIT 1",
                    *params,
                )
                if priority is None:
                    break
                records = await connection.fetch(
                    "WITH due AS (SELECT id FROM leads WHERE campaign = $1 AND status IN ('new', 'scheduled')"
                    " AND priority = $2 AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT $4"
                    " FOR UPDATE SKIP LOCKED)"
                    " UPDATE leads SET status = 'dialing', claimed_by = $5, claimed_at = $3 FROM due"
                    f" WHERE leads.id = due.id RETURNING {returning}",
                    campaign, priority, utc(now), limit - len(claimed), self.node,
                )
                batch = [lead_from_record(r) for r in records]
                claimed += sorted(batch, key=lambda lead: (lead.next_attempt_at, lead.id))
        return claimed

    async def schedule_lead(
        self, lead_id: int, next_attempt_at: datetime, *, attempted: bool, outcome: str | None = None
    ) -> bool:
        status = await self._pool.execute(
            "UPDATE leads SET status = 'scheduled', next_attempt_at = $1, attempts = attempts + $2,"
            " last_outcome = COALESCE($4, last_outcome), claimed_by = NULL, claimed_at = NULL WHERE id = $3",
            utc(next_attempt_at), int(attempted), lead_id, outcome,
        )
        return status == "UPDATE 1"

    async def finish_lead(self, lead_id: int, status: str, *, attempted: bool, outcome: str | None = None) -> bool:
        check_final_status(status)
        result = await self._pool.execute(
            "UPDATE leads SET status = $1, next_attempt_at = NULL, attempts = attempts + $2,"
            " last_outcome = COALESCE($4, last_outcome), claimed_by = NULL, claimed_at = NULL WHERE id = $3",
            status, int(attempted), lead_id, outcome,
        )
        return result == "UPDATE 1"

    async def recycle_leads(
        self, campaign: str, outcomes: Iterable[str], due_at: datetime, *, max_passes: int | None = None
    ) -> int:
        chosen = check_recycle_outcomes(outcomes)
        result = await self._pool.execute(
            "UPDATE leads SET status = 'scheduled', attempts = 0, next_attempt_at = $2, passes = passes + 1"
            " WHERE campaign = $1 AND status = 'closed' AND ($4::int IS NULL OR passes < $4)"
            " AND last_outcome = ANY($3::text[])",
            campaign, utc(due_at), chosen, max_passes,
        )
        return int(result.split()[-1])

    async def release_dialing_leads(self, node: str) -> int:
        result = await self._pool.execute(
            f"UPDATE leads SET status = 'scheduled', attempts = {ATTEMPTS_AFTER_RELEASE},"
            " claimed_by = NULL, claimed_at = NULL WHERE status = 'dialing' AND claimed_by = $1",
            node,
        )
        return int(result.split()[-1])

    # CDRs
    async def open_cdr(
        self, call_id: str, campaign: str, lead_id: int | None, trunk: str | None, started_at: datetime
    ) -> None:
        await self._pool.execute(
            "INSERT INTO cdrs (call_id, campaign, lead_id, trunk, started_at, node) VALUES ($1, $2, $3, $4, $5, $6)",
            call_id, campaign, lead_id, trunk, utc(started_at), self.node,
        )

    async def update_cdr(self, call_id: str, **values: object) -> None:
        columns = check_cdr_update(values)
        if not columns:
            return
        assignments = ", ".join(f"{column} = ${index}" for index, column in enumerate(columns, start=2))
        params = [utc(values[c]) if isinstance(values[c], datetime) else values[c] for c in columns]
        result = await self._pool.execute(f"UPDATE cdrs SET {assignments} WHERE call_id = $1", call_id, *params)
        if result != "UPDATE 1":
            raise KeyError(call_id)

    async def close_cdr(
        self,
        call_id: str,
        ended_at: datetime,
        outcome: str,
        *,
        sip_code: int | None = None,
        abandoned: bool = False,
        hangup_by: str | None = None,
    ) -> None:
        check_outcome(outcome)
        result = await self._pool.execute(
            "UPDATE cdrs SET ended_at = $2, outcome = $3, sip_code = COALESCE($4, sip_code), abandoned = $5,"
            " hangup_by = $6 WHERE call_id = $1",
            call_id, utc(ended_at), outcome, sip_code, abandoned, hangup_by,
        )
        if result != "UPDATE 1":
            raise KeyError(call_id)

    async def get_cdr(self, call_id: str) -> Cdr | None:
        record = await self._pool.fetchrow(f"SELECT {', '.join(CDR_COLUMNS)} FROM cdrs WHERE call_id = $1", call_id)
        return cdr_from_record(record) if record else None

    async def close_live_cdrs(self, node: str, now: datetime) -> int:
        result = await self._pool.execute(
            "UPDATE cdrs SET ended_at = $2, outcome = 'failed', hangup_by = 'crash' WHERE node = $1 AND ended_at IS NULL",
            node, utc(now),
        )
        return int(result.split()[-1])

    async def _cdr_page(
        self, campaign: str | None, since: datetime | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[Cdr]:
        after_at, after_id = after if after else (None, None)
        records = await self._pool.fetch(
            f"SELECT {', '.join(CDR_COLUMNS)} FROM cdrs WHERE ($1::text IS NULL OR campaign = $1)"
            " AND ($2::timestamptz IS NULL OR started_at >= $2)"
            " AND ($3::timestamptz IS NULL OR (started_at, call_id) > ($3, $4::text))"
            " ORDER BY started_at, call_id LIMIT $5",
            campaign, since, after_at, after_id, limit,
        )
        return [cdr_from_record(r) for r in records]

    # agents
    async def agent_login(self, agent_id: str, at: datetime) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE agent_sessions SET logout_at = $2 WHERE agent_id = $1 AND logout_at IS NULL", agent_id, utc(at)
            )
            return await connection.fetchval(
                "INSERT INTO agent_sessions (agent_id, node, login_at) VALUES ($1, $2, $3) RETURNING id",
                agent_id, self.node, utc(at),
            )

    async def agent_logout(self, agent_id: str, at: datetime) -> bool:
        result = await self._pool.execute(
            "UPDATE agent_sessions SET logout_at = $2 WHERE agent_id = $1 AND logout_at IS NULL", agent_id, utc(at)
        )
        return result != "UPDATE 0"

    async def open_agent_sessions(self) -> list[str]:
        records = await self._pool.fetch(
            "SELECT agent_id FROM agent_sessions WHERE logout_at IS NULL AND node = $1 ORDER BY agent_id", self.node
        )
        return [r["agent_id"] for r in records]

    async def record_disposition(self, call_id: str, agent_id: str, disposition: str, at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO dispositions (call_id, agent_id, disposition, created_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (call_id) DO UPDATE SET agent_id = excluded.agent_id,"
            " disposition = excluded.disposition, created_at = excluded.created_at",
            call_id, agent_id, disposition, utc(at),
        )

    async def get_disposition(self, call_id: str) -> Disposition | None:
        record = await self._pool.fetchrow(
            "SELECT call_id, agent_id, disposition, created_at FROM dispositions WHERE call_id = $1", call_id
        )
        return Disposition(*record) if record else None

    async def close(self) -> None:
        await self._pool.close()
