"""`python -m dialer run` as a real process: bad config, SIGHUP reloads, SIGTERM drains, and kill -9 recovery."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from dialer.storage import open_store
from tests.dialer.e2e.conftest import e2e_config
from tests.dialer.runtime.conftest import TOKEN, lead, now_utc, numbers_in_window, wait_for

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[3]


class DaemonProcess:
    """`python -m dialer run --config FILE`, its stderr log collected line by line."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self.api_port: int | None = None
        self._reader: asyncio.Task | None = None

    async def start(self, *, wait_ready: bool = True) -> "DaemonProcess":
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer", "run", "--config", str(self.config_path), cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        if wait_ready:
            line = await self.wait_for_line(r"ready: ", timeout=30)
            self.api_port = int(re.search(r"api=http://[^:]+:(\d+)", line).group(1))
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def wait_for_line(self, pattern: str, timeout: float = 15) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            if self.process.returncode is not None and self._reader.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r}; log:\n" + "\n".join(self.lines[-30:]))

    async def wait(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._reader, 5)
        return code

    async def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.request(method, f"http://127.0.0.1:{self.api_port}{path}", json=body) as response:
                return response.status, await response.json()

    def kill(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signum)


@pytest.fixture
async def daemons():
    started: list[DaemonProcess] = []

    async def start(config_path: Path, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(config_path)
        started.append(daemon)
        return await daemon.start(**kwargs)

    yield start
    for daemon in started:
        daemon.kill(signal.SIGKILL)
        if daemon.process is not None:
            await daemon.process.wait()


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_data(tmp_path: Path, carrier_port: int, phones, **campaign: object) -> dict:
    return e2e_config(tmp_path, carrier_port, phones, **campaign).model_dump(mode="json", by_alias=True)


async def test_broken_yaml_exits_2_naming_file_and_line(tmp_path, daemons) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("node:\n  name: x\napi:\n  token: [unclosed\n")
    daemon = await daemons(broken, wait_ready=False)
    assert await daemon.wait() == 2
    log = "\n".join(daemon.lines)
    assert str(broken) in log and re.search(r"line \d+", log), log


async def test_sighup_keeps_running_config_when_new_one_is_broken_and_sigterm_exits_0(
        tmp_path, daemons, agent_phones) -> None:
    phones = await agent_phones(1)
    data = config_data(tmp_path, 9, phones)
    path = write_config(tmp_path / "node.yaml", data)
    daemon = await daemons(path)
    path.write_text(path.read_text().replace("wrap_up_s: 0.3", "wrap_up_s: [oops"))
    daemon.kill(signal.SIGHUP)
    refused = await daemon.wait_for_line(r"config not reloaded, keeping the running one")
    await daemon.wait_for_line(re.escape(str(path)) + r": line \d+")
    assert daemon.process.returncode is None
    status, body = await daemon.api("GET", "/v1/campaigns/c1")
    assert status == 200 and body["state"] == "stopped", refused
    data["campaigns"][0]["wrap_up_s"] = 1.5
    write_config(path, data)
    daemon.kill(signal.SIGHUP)
    await daemon.wait_for_line(r"config reloaded from")
    daemon.kill(signal.SIGTERM)
    assert await daemon.wait() == 0
    assert any("engine stopped" in line for line in daemon.lines)


def db_rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return db.execute(query).fetchall()


async def test_kill_9_mid_campaign_loses_nothing_and_breaches_no_cap(tmp_path, daemons, sipp_carrier,
                                                                      agent_phones) -> None:
    carrier = await sipp_carrier(ring_ms=6000, talk_ms=3000, timeout_s=100)
    phones = await agent_phones(2)
    numbers = numbers_in_window(6)
    data = config_data(tmp_path, carrier.port, phones, compliance={"rule_pack": "us",
                                                                    "caps_per_number": {"rolling_24h": 1}})
    data["node"]["shutdown_grace_s"] = 2
    path = write_config(tmp_path / "node.yaml", data)
    database = tmp_path / "dialer.db"
    store = await open_store(f"sqlite:///{database}", node="e2e")
    await store.add_leads("c1", [lead(n) for n in numbers], now_utc())
    await store.close()

    first = await daemons(path)
    for agent_id in phones.agent_ids:
        assert (await first.api("POST", f"/v1/agents/{agent_id}/login"))[0] == 200
    await wait_for(lambda: len(db_rows(database, "SELECT 1 FROM agent_sessions WHERE logout_at IS NULL")) == 2)
    assert (await first.api("POST", "/v1/campaigns/c1/start"))[0] == 200
    await wait_for(lambda: len(carrier.invites()) == 2)  # both calls ring (6 s) when the node is killed
    attempts_before = db_rows(database, "SELECT id, number FROM attempts ORDER BY id")
    cdrs_before = db_rows(database, "SELECT call_id FROM cdrs ORDER BY call_id")
    first.kill(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    live = db_rows(database, "SELECT call_id FROM cdrs WHERE ended_at IS NULL")
    assert len(live) == 2 and len(cdrs_before) == 2  # opened before their INVITEs, live at the kill
    assert db_rows(database, "SELECT id, number FROM attempts ORDER BY id")[:len(attempts_before)] == attempts_before
    dialled_before = {number for _, number in attempts_before}

    second = await daemons(path)
    await second.wait_for_line(r"crash recovery: node=e2e closed_live_cdrs=2 released_leads=2")
    closed = db_rows(database, "SELECT call_id, outcome, hangup_by, ended_at IS NOT NULL FROM cdrs "
                               f"WHERE call_id IN ({','.join(repr(c) for (c,) in live)})")
    assert all(outcome == "failed" and by == "crash" and ended for _, outcome, by, ended in closed), closed
    assert set(db_rows(database, "SELECT call_id FROM cdrs")) >= set(cdrs_before)  # no CDR lost
    # the campaign and the agents' sessions resume by themselves; leads dialled before the kill hit the cap
    await wait_for(lambda: len(carrier.invites()) >= len(dialled_before) + 2, timeout=30)
    await wait_for(lambda: {n for (n,) in db_rows(database, "SELECT number FROM audit WHERE reason = 'frequency_cap'")}
                == dialled_before, timeout=30)
    second.kill(signal.SIGTERM)
    assert await second.wait(timeout=30) == 0

    per_number = db_rows(database, "SELECT number, COUNT(*) FROM attempts GROUP BY number")
    assert all(count == 1 for _, count in per_number), per_number  # rolling_24h cap of 1 never breached
    invited = carrier.invites()
    for number in numbers:
        assert sum(number[1:] in uri for uri in invited) <= 1, number
    assert db_rows(database, "SELECT COUNT(*) FROM cdrs WHERE ended_at IS NULL") == [(0,)]
    assert db_rows(database, "SELECT id, number FROM attempts ORDER BY id")[:len(attempts_before)] == attempts_before

