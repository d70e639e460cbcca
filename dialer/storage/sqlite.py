"""SQLite store (aiosqlite): the embedded default.

Durability: WAL, synchronous=NORMAL by default. In WAL mode a commit is written to the WAL file before the call
returns; NORMAL only skips the fsync, so a commit survives `kill -9` of the engine (the data is in the OS page
cache and reaches the disk) and any clean OS restart -- tests/dialer/storage/test_store_crash.py kills a real
process to prove it. What NORMAL can lose is the last commits before a power cut or kernel crash (the database
stays consistent). FULL (node.database_synchronous) closes that gap with one fsync per commit, measured here at
110-430 commits/s against 1,400-6,700 with NORMAL, 9 to 60 times fewer across runs (benchmarks/store_hopper.py);
at about six commits per call that caps a node near 20-70 calls per second. The compliance ledger, which alone
decides whether a number may be dialled again, keeps its own durability, so a lost engine commit cannot breach a
cap.

Writers take the lock up front (BEGIN IMMEDIATE), so a claim reads and marks its leads with no other writer in
between, across tasks and across processes sharing the file; busy_timeout makes them queue instead of failing.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import aiosqlite

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
TIME_COLUMNS = frozenset({"started_at", "answered_at", "bridged_at", "ended_at"})
# The hopper walks the campaign's priorities from the top (each step one index seek), then takes due leads of
# that priority in due order: the cost stays with the leads claimed, however many wait for later at a higher one.
TOP_PRIORITY_SQL = (
    "SELECT priority FROM leads WHERE campaign = ? AND status IN ('new', 'scheduled') {below}"
    " ORDER BY priority DESC LIMIT 1"
)


def to_text(moment: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so that text order is time order in indexes and comparisons."""
    if moment is None:
        return None
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def lead_from_row(row: aiosqlite.Row) -> Lead:
    return Lead(
        id=row[0],
        campaign=row[1],
        e164=row[2],
        raw_number=row[3],
        time_zones=tuple(json.loads(row[4])),
        status=row[5],
        attempts=row[6],
        next_attempt_at=from_text(row[7]),
        priority=row[8],
        fields=json.loads(row[9]),
        claimed_by=row[10],
        last_outcome=row[11],
        passes=row[12],
    )


def cdr_from_row(row: aiosqlite.Row) -> Cdr:
    values = dict(zip(CDR_COLUMNS, row))
    for column in TIME_COLUMNS:
        values[column] = from_text(values[column])
    values["abandoned"] = bool(values["abandoned"])
    return Cdr(**values)


async def _switch_to_wal(connection: aiosqlite.Connection, busy_timeout_s: float) -> None:
    """The switch needs the file to itself and SQLite does not wait for that (no busy handler), so nodes opening
    a new file together retry until busy_timeout_s. WAL then stays set in the file."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout_s
    while True:
        try:
            async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
                (mode,) = await cursor.fetchone()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(0.01)
    if mode.lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use WAL journal mode here (SQLite kept {mode!r})")


class SqliteStore(Store):
    def __init__(self, connection: aiosqlite.Connection, node: str):
        self._db = connection
        self.node = node
        # One connection serves every task of this process; a transaction must not interleave with another's.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: Path | str, *, node: str, busy_timeout_s: float = 5.0, synchronous: str = "NORMAL"
    ) -> "SqliteStore":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            await _switch_to_wal(connection, busy_timeout_s)
            if synchronous not in ("FULL", "NORMAL"):
                raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
            await connection.execute(f"PRAGMA synchronous = {synchronous}")
            store = cls(connection, node)
            await store._migrate()
        except BaseException:
            await connection.close()
            raise
        return store

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. A writer cancelled at any await (engine shutdown) must not leave the shared
        connection inside its transaction: aiosqlite still runs what was queued, so ROLLBACK/COMMIT are shielded
        and queued behind it."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                await asyncio.shield(self._rollback())
                raise
            try:
                yield self._db
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            await asyncio.shield(self._db.execute("COMMIT"))

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # the transaction never began (BEGIN failed or was not reached)

    async def _read(self, sql: str, params: Iterable[object] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            async with self._db.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())

    async def _migrate(self) -> None:
        async with self._write() as db:
            await db.execute(schema_version_table("sqlite"))
            async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
                (applied,) = await cursor.fetchone()
            for version, statements in pending_steps("sqlite", applied):
                for statement in statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%f+00:00'))",
                    (version,),
                )

    async def schema_version(self) -> int:
        rows = await self._read("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return rows[0][0]

    # campaigns
    async def set_campaign_state(self, name: str, state: CampaignState, now: datetime) -> Campaign:
        check_campaign_state(state)
        async with self._write() as db:
            await db.execute(
                "INSERT INTO campaigns (name, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (name, state, to_text(now)),
            )
        return Campaign(name, state, utc(now))

    async def get_campaign(self, name: str) -> Campaign | None:
        rows = await self._read("SELECT name, state, updated_at FROM campaigns WHERE name = ?", (name,))
        return Campaign(rows[0][0], rows[0][1], from_text(rows[0][2])) if rows else None

    async def list_campaigns(self) -> list[Campaign]:
        rows = await self._read("SELECT name, state, updated_at FROM campaigns ORDER BY name")
        return [Campaign(r[0], r[1], from_text(r[2])) for r in rows]

    # leads
    async def add_leads(self, campaign: str, leads: Iterable[NewLead], now: datetime) -> AddLeadsResult:
        stamp = to_text(now)
        rows = [
            (campaign, lead.e164, lead.raw_number, json.dumps(list(lead.time_zones)), lead.priority,
             json.dumps(lead.fields), stamp, stamp)
            for lead in leads
        ]
        if not rows:
            return AddLeadsResult(0, 0)
        async with self._write() as db:
            cursor = await db.executemany(
                "INSERT INTO leads (campaign, e164, raw_number, time_zones, priority, fields, next_attempt_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, e164) DO NOTHING",
                rows,
            )
            imported = cursor.rowcount
        return AddLeadsResult(imported, len(rows) - imported)

    async def get_lead(self, lead_id: int) -> Lead | None:
        rows = await self._read(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))
        return lead_from_row(rows[0]) if rows else None

    async def list_leads(self, campaign: str, *, status: str | None = None, limit: int = 1000) -> list[Lead]:
        rows = await self._read(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE campaign = ? AND (? IS NULL OR status = ?) ORDER BY id LIMIT ?",
            (campaign, status, status, limit),
        )
        return [lead_from_row(r) for r in rows]

    async def count_leads(self, campaign: str) -> dict[str, int]:
        rows = await self._read("SELECT status, COUNT(*) FROM leads WHERE campaign = ? GROUP BY status", (campaign,))
        return {status: 0 for status in LEAD_STATUSES} | {status: count for status, count in rows}

    async def claim_leads(self, campaign: str, now: datetime, limit: int) -> list[Lead]:
        if limit <= 0:
            return []
        stamp = to_text(now)
        claimed: list[Lead] = []
        async with self._write() as db:
            priority: int | None = None
            while len(claimed) < limit:
                below = "" if priority is None else "AND priority < ?"
                params = (campaign,) if priority is None else (campaign, priority)
                async with db.execute(TOP_PRIORITY_SQL.format(below=below), params) as cursor:
                    row = await cursor.fetchone()
                if row is None:
                    break
                (priority,) = row
                async with db.execute(
                    "UPDATE leads SET status = 'dialing', claimed_by = ?, claimed_at = ? WHERE id IN ("
                    " SELECT id FROM leads WHERE campaign = ? AND status IN ('new', 'scheduled') AND priority = ?"
                    " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?)"
                    f" RETURNING {LEAD_COLUMNS}",
                    (self.node, stamp, campaign, priority, stamp, limit - len(claimed)),
                ) as cursor:
                    batch = [lead_from_row(r) for r in await cursor.fetchall()]
                claimed += sorted(batch, key=lambda lead: (lead.next_attempt_at, lead.id))
        return claimed

    async def schedule_lead(
        self, lead_id: int, next_attempt_at: datetime, *, attempted: bool, outcome: str | None = None
    ) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE leads SET status = 'scheduled', next_attempt_at = ?, attempts = attempts + ?,"
                " last_outcome = COALESCE(?, last_outcome), claimed_by = NULL, claimed_at = NULL WHERE id = ?",
                (to_text(next_attempt_at), int(attempted), outcome, lead_id),
            )
            return cursor.rowcount == 1

    async def finish_lead(self, lead_id: int, status: str, *, attempted: bool, outcome: str | None = None) -> bool:
        check_final_status(status)
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE leads SET status = ?, next_attempt_at = NULL, attempts = attempts + ?,"
                " last_outcome = COALESCE(?, last_outcome), claimed_by = NULL, claimed_at = NULL WHERE id = ?",
                (status, int(attempted), outcome, lead_id),
            )
            return cursor.rowcount == 1

    async def recycle_leads(
        self, campaign: str, outcomes: Iterable[str], due_at: datetime, *, max_passes: int | None = None
    ) -> int:
        chosen = check_recycle_outcomes(outcomes)
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE leads SET status = 'scheduled', attempts = 0, next_attempt_at = ?, passes = passes + 1"
                " WHERE campaign = ? AND status = 'closed' AND (? IS NULL OR passes < ?)"
                f" AND last_outcome IN ({', '.join('?' * len(chosen))})",
                (to_text(due_at), campaign, max_passes, max_passes, *chosen),
            )
            return cursor.rowcount

    async def release_dialing_leads(self, node: str) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE leads SET status = 'scheduled', attempts = {ATTEMPTS_AFTER_RELEASE},"
                " claimed_by = NULL, claimed_at = NULL WHERE status = 'dialing' AND claimed_by = ?",
                (node,),
            )
            return cursor.rowcount

    # CDRs
    async def open_cdr(
        self, call_id: str, campaign: str, lead_id: int | None, trunk: str | None, started_at: datetime
    ) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO cdrs (call_id, campaign, lead_id, trunk, started_at, node) VALUES (?, ?, ?, ?, ?, ?)",
                (call_id, campaign, lead_id, trunk, to_text(started_at), self.node),
            )

    async def update_cdr(self, call_id: str, **values: object) -> None:
        columns = check_cdr_update(values)
        if not columns:
            return
        params = [to_text(values[c]) if c in TIME_COLUMNS else values[c] for c in columns]
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE cdrs SET {', '.join(f'{c} = ?' for c in columns)} WHERE call_id = ?", (*params, call_id)
            )
            if cursor.rowcount != 1:
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
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE cdrs SET ended_at = ?, outcome = ?, sip_code = COALESCE(?, sip_code), abandoned = ?,"
                " hangup_by = ? WHERE call_id = ?",
                (to_text(ended_at), outcome, sip_code, int(abandoned), hangup_by, call_id),
            )
            if cursor.rowcount != 1:
                raise KeyError(call_id)

    async def get_cdr(self, call_id: str) -> Cdr | None:
        rows = await self._read(f"SELECT {', '.join(CDR_COLUMNS)} FROM cdrs WHERE call_id = ?", (call_id,))
        return cdr_from_row(rows[0]) if rows else None

    async def close_live_cdrs(self, node: str, now: datetime) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE cdrs SET ended_at = ?, outcome = 'failed', hangup_by = 'crash'"
                " WHERE node = ? AND ended_at IS NULL",
                (to_text(now), node),
            )
            return cursor.rowcount

    async def _cdr_page(
        self, campaign: str | None, since: datetime | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[Cdr]:
        after_at, after_id = (to_text(after[0]), after[1]) if after else (None, None)
        rows = await self._read(
            f"SELECT {', '.join(CDR_COLUMNS)} FROM cdrs WHERE (? IS NULL OR campaign = ?)"
            " AND (? IS NULL OR started_at >= ?) AND (? IS NULL OR (started_at, call_id) > (?, ?))"
            " ORDER BY started_at, call_id LIMIT ?",
            (campaign, campaign, to_text(since), to_text(since), after_at, after_at, after_id, limit),
        )
        return [cdr_from_row(r) for r in rows]

    # agents
    async def agent_login(self, agent_id: str, at: datetime) -> int:
        stamp = to_text(at)
        async with self._write() as db:
            await db.execute(
                "UPDATE agent_sessions SET logout_at = ? WHERE agent_id = ? AND logout_at IS NULL", (stamp, agent_id)
            )
            cursor = await db.execute(
                "INSERT INTO agent_sessions (agent_id, node, login_at) VALUES (?, ?, ?)", (agent_id, self.node, stamp)
            )
            return cursor.lastrowid

    async def agent_logout(self, agent_id: str, at: datetime) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE agent_sessions SET logout_at = ? WHERE agent_id = ? AND logout_at IS NULL",
                (to_text(at), agent_id),
            )
            return cursor.rowcount > 0

    async def open_agent_sessions(self) -> list[str]:
        rows = await self._read(
            "SELECT agent_id FROM agent_sessions WHERE logout_at IS NULL AND node = ? ORDER BY agent_id", (self.node,)
        )
        return [r[0] for r in rows]

    async def record_disposition(self, call_id: str, agent_id: str, disposition: str, at: datetime) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO dispositions (call_id, agent_id, disposition, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (call_id) DO UPDATE SET agent_id = excluded.agent_id,"
                " disposition = excluded.disposition, created_at = excluded.created_at",
                (call_id, agent_id, disposition, to_text(at)),
            )

    async def get_disposition(self, call_id: str) -> Disposition | None:
        rows = await self._read(
            "SELECT call_id, agent_id, disposition, created_at FROM dispositions WHERE call_id = ?", (call_id,)
        )
        return Disposition(rows[0][0], rows[0][1], rows[0][2], from_text(rows[0][3])) if rows else None

    async def close(self) -> None:
        await self._db.close()
