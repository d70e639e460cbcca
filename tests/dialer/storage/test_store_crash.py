"""kill -9 of a real process: what it committed survives, and the restart closes what it left live."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dialer.storage import NewLead

REPO = Path(__file__).resolve().parents[3]

CRASHING_NODE = """
import asyncio, sys
from datetime import datetime, timezone
from dialer.storage import NewLead, open_store

async def main():
    store = await open_store(sys.argv[1], node="crashy")
    now = datetime.now(timezone.utc)
    await store.add_leads("c", [NewLead(e164=f"+1202555{i:04d}", raw_number=str(i)) for i in range(3)], now)
    leads = await store.claim_leads("c", now, 2)
    for lead in leads:
        await store.open_cdr(f"call-{lead.id}", "c", lead.id, "t", now)
    await store.update_cdr(f"call-{leads[0].id}", answered_at=now, sip_code=200)
    print("committed", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_kill_9_keeps_committed_rows_and_restart_closes_live_work(store_dsn, open_test_store):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_NODE, store_dsn, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line == b"committed\n"
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()

    restarted = await open_test_store("crashy")
    counts = await restarted.count_leads("c")
    assert (counts["dialing"], counts["new"]) == (2, 1)
    live = [cdr async for cdr in restarted.export_cdrs(campaign="c")]
    assert len(live) == 2 and all(cdr.ended_at is None for cdr in live)
    assert sorted(cdr.sip_code for cdr in live if cdr.sip_code) == [200]

    now = datetime.now(timezone.utc)
    assert await restarted.close_live_cdrs("crashy", now) == 2
    assert await restarted.release_dialing_leads("crashy") == 2
    closed = [cdr async for cdr in restarted.export_cdrs(campaign="c")]
    assert {(cdr.outcome, cdr.hangup_by) for cdr in closed} == {("failed", "crash")}
    assert (await restarted.count_leads("c"))["scheduled"] == 2
    assert sorted(lead.attempts for lead in await restarted.list_leads("c")) == [0, 1, 1]  # the two calls count
    assert len(await restarted.claim_leads("c", now + timedelta(seconds=1), 10)) == 3
    await restarted.add_leads("c", [NewLead(e164="+12025550000", raw_number="0")], now)
    assert (await restarted.count_leads("c"))["new"] == 0
