"""Versioned schema: ordered steps, each applied once and recorded in schema_version.

One schema text serves both backends; only the column types differ, filled in per dialect.
Add a step at the end to change the schema; never edit a step that has shipped.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "ts": "TEXT", "json": "TEXT", "bool": "INTEGER", "false": "0"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "ts": "TIMESTAMPTZ", "json": "JSONB", "bool": "BOOLEAN", "false": "FALSE"},
}

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {ts} NOT NULL)"

STEPS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE campaigns (
                name TEXT PRIMARY KEY,
                state TEXT NOT NULL CHECK (state IN ('stopped', 'running', 'paused')),
                updated_at {ts} NOT NULL)""",
            """CREATE TABLE leads (
                id {id},
                campaign TEXT NOT NULL,
                e164 TEXT NOT NULL,
                raw_number TEXT NOT NULL,
                time_zones {json} NOT NULL,
                status TEXT NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'scheduled', 'dialing', 'done', 'closed')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at {ts},
                priority INTEGER NOT NULL DEFAULT 0,
                fields {json} NOT NULL,
                claimed_by TEXT,
                claimed_at {ts},
                created_at {ts} NOT NULL,
                UNIQUE (campaign, e164))""",
            """CREATE INDEX leads_due ON leads (campaign, priority DESC, next_attempt_at, id)
                WHERE status IN ('new', 'scheduled')""",
            "CREATE INDEX leads_claimed ON leads (claimed_by) WHERE status = 'dialing'",
            """CREATE TABLE cdrs (
                call_id TEXT PRIMARY KEY,
                campaign TEXT NOT NULL,
                lead_id BIGINT,
                trunk TEXT,
                agent_id TEXT,
                started_at {ts} NOT NULL,
                answered_at {ts},
                bridged_at {ts},
                ended_at {ts},
                outcome TEXT,
                sip_code INTEGER,
                abandoned {bool} NOT NULL DEFAULT {false},
                recording_path TEXT,
                hangup_by TEXT,
                node TEXT NOT NULL)""",
            "CREATE INDEX cdrs_started ON cdrs (started_at, call_id)",
            "CREATE INDEX cdrs_live ON cdrs (node) WHERE ended_at IS NULL",
            """CREATE TABLE agent_sessions (
                id {id},
                agent_id TEXT NOT NULL,
                node TEXT NOT NULL,
                login_at {ts} NOT NULL,
                logout_at {ts})""",
            "CREATE INDEX agent_sessions_open ON agent_sessions (agent_id) WHERE logout_at IS NULL",
            """CREATE TABLE dispositions (
                call_id TEXT PRIMARY KEY,
                agent_id TEXT NOT NULL,
                disposition TEXT NOT NULL,
                created_at {ts} NOT NULL)""",
        ),
    ),
    (
        2,
        # crash recovery asks, per released lead, whether its call had started
        ("CREATE INDEX cdrs_lead ON cdrs (lead_id, started_at)",),
    ),
    (
        3,
        # list recycling reopens closed leads by the outcome (or gate reason) that closed them
        (
            "ALTER TABLE leads ADD COLUMN last_outcome TEXT",
            "ALTER TABLE leads ADD COLUMN passes INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX leads_recyclable ON leads (campaign, last_outcome) WHERE status = 'closed'",
        ),
    ),
)

LATEST_VERSION = STEPS[-1][0]


def schema_version_table(dialect: Dialect) -> str:
    return SCHEMA_VERSION_TABLE.format(**TYPES[dialect])


def pending_steps(dialect: Dialect, applied: int) -> list[tuple[int, list[str]]]:
    """Steps newer than `applied`, in order, with the dialect's types filled in."""
    return [
        (version, [statement.format(**TYPES[dialect]) for statement in statements])
        for version, statements in STEPS
        if version > applied
    ]
