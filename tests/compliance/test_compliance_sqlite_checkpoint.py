"""The SQLite ledger checkpoints its WAL in the background, not inside reservation commits."""

import asyncio
import os
import sqlite3
from datetime import datetime, timedelta, timezone

from compliance.gate import CampaignContext, Gate
from compliance.ledger_sqlite import SqliteLedger
from compliance.packs import load_pack

US = load_pack("us")
NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=timezone.utc)


async def reserve_many(gate: Gate, count: int) -> None:
    campaign = CampaignContext("u1", "+12025550199", US)
    await asyncio.gather(
        *(gate.reserve(f"+1202555{index:04d}", campaign, NOON_NY + timedelta(seconds=index)) for index in range(count))
    )


async def test_reservation_commits_do_not_checkpoint_but_the_background_checkpointer_does(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = await SqliteLedger.open(str(path), checkpoint_interval_s=3600)
    gate = Gate(ledger)
    await reserve_many(gate, 400)
    wal_bytes_before = os.path.getsize(f"{path}-wal")
    main_before = os.path.getsize(path)
    assert wal_bytes_before > main_before  # the reservations sit in the WAL: no commit copied them back
    ledger._checkpointer.interval_s = 0.05
    ledger._checkpointer._task.cancel()
    ledger._checkpointer.start()
    await asyncio.sleep(0.5)
    assert os.path.getsize(path) > main_before  # the checkpointer copied the WAL's pages into the database
    await ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 400


async def test_closing_the_ledger_stops_its_checkpointer(tmp_path):
    ledger = await SqliteLedger.open(str(tmp_path / "ledger.db"), checkpoint_interval_s=0.01)
    task = ledger._checkpointer._task
    await asyncio.sleep(0.05)
    await ledger.close()
    assert task.done()
