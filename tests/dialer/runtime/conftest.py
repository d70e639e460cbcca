"""An engine on a temporary SQLite database with the simulated telephony backend, for runtime tests."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest

from compliance.numbers import normalize
from dialer.config import DialerConfig
from dialer.storage import NewLead

TOKEN = "runtime-test-token-0123456789"


def engine_config(tmp_path: Path, *, agents: int = 2, campaign: dict | None = None, **node: object) -> DialerConfig:
    return DialerConfig.model_validate({
        "node": {"name": "t1", "database": f"sqlite:///{tmp_path / 'dialer.db'}",
                 "recordings_dir": str(tmp_path / "recordings"),
                 "registrations_file": str(tmp_path / "registrations.db"), "shutdown_grace_s": 5, **node},
        "api": {"port": 0, "token": TOKEN},
        "metrics": {"port": 0},
        "trunks": [{"name": "carrier", "host": "127.0.0.1", "port": 5099, "max_channels": 20, "max_cps": 50}],
        "agents": [{"id": f"a{i}"} for i in range(1, agents + 1)],
        "campaigns": [{"name": "c1", "caller_id": "+12025550100", "trunks": ["carrier"], "ring_timeout_s": 5,
                       "wrap_up_s": 0.2, "compliance": {"rule_pack": "uk"},
                       "pacing": {"mode": "progressive", "interval_s": 0.1}, **(campaign or {})}],
    })


def lead(raw: str) -> NewLead:
    parsed = normalize(raw)
    return NewLead(parsed.e164, raw, parsed.time_zones)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# One number per zone; the union of their 09:00-20:00 local windows covers every UTC hour.
NUMBERS_BY_ZONE = {
    "Pacific/Honolulu": ["+18085550{:03d}", "+1808"], "America/Los_Angeles": ["+12135550{:03d}", "+1213"],
    "America/Chicago": ["+13125550{:03d}", "+1312"], "America/New_York": ["+12125550{:03d}", "+1212"],
    "Europe/London": ["+4420794600{:02d}", "+4420"], "Asia/Kolkata": ["+9198100{:05d}", "+91"],
    "Asia/Shanghai": ["+861380013{:04d}", "+86"], "Asia/Tokyo": ["+81312345{:03d}", "+81"],
    "Australia/Sydney": ["+61255501{:03d}", "+61"],
}


def numbers_in_window(count: int, *, inside: bool = True, start_h: int = 9, end_h: int = 20) -> list[str]:
    """``count`` valid numbers whose local time is now inside (or, inside=False, outside 07:00-22:00) hours."""
    from zoneinfo import ZoneInfo

    found = []
    for zone, (pattern, _prefix) in NUMBERS_BY_ZONE.items():
        hour = datetime.now(ZoneInfo(zone)).hour
        ok = start_h <= hour < end_h if inside else not 7 <= hour < 22
        if not ok:
            continue
        for index in range(200):
            try:
                parsed = normalize(pattern.format(index))
            except ValueError:
                continue
            if zone in parsed.time_zones and len(parsed.time_zones) == 1:
                found.append(parsed.e164)
            if len(found) == count:
                return found
    raise RuntimeError(f"not enough numbers {'inside' if inside else 'outside'} the window now")


async def wait_for(predicate, timeout: float = 10.0, step: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


RUNTIME_DATABASE = "dialer_runtime_test"


@pytest.fixture
async def fresh_postgres(postgres_dsn: str) -> str:
    """A DSN of this suite's own PostgreSQL database, recreated empty for the test."""
    import asyncpg

    server = await asyncpg.connect(postgres_dsn)
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {RUNTIME_DATABASE} WITH (FORCE)")
        await server.execute(f"CREATE DATABASE {RUNTIME_DATABASE}")
    finally:
        await server.close()
    return postgres_dsn.rsplit("/", 1)[0] + f"/{RUNTIME_DATABASE}"
