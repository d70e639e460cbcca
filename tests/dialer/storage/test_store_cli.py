"""`dialer leads import` and `dialer cdr export` against both backends (the command runs in a worker thread,
as it owns its own event loop)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

from dialer.cli import main

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


async def test_import_twice_then_export(store_dsn, open_test_store, tmp_path, capsys):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"number,name\n+12025550100,Ann\n+8613800138000,Li\nbogus,X\n")
    args = ["leads", "import", str(path), "--campaign", "spring", "--db", store_dsn]
    assert await asyncio.to_thread(main, args) == 1
    assert await asyncio.to_thread(main, args) == 1
    out = capsys.readouterr()
    assert out.out.splitlines()[-1].endswith("imported 0, duplicates 2, rejected 1")
    assert "line 4: number:" in out.err

    store = await open_test_store()
    assert (await store.count_leads("spring"))["new"] == 2
    [lead] = await store.claim_leads("spring", datetime.now(timezone.utc), 1)
    await store.open_cdr("call-1", "spring", lead.id, "t1", T0)
    await store.close_cdr("call-1", T0 + timedelta(seconds=3), "busy", sip_code=486, hangup_by="remote")

    assert await asyncio.to_thread(main, ["cdr", "export", "--format", "json", "--db", store_dsn]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (record["call_id"], record["lead_id"], record["outcome"], record["sip_code"]) == (
        "call-1", lead.id, "busy", 486)
    assert record["started_at"] == "2026-03-02T09:00:00+00:00"
