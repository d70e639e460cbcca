"""Two `python -m dialer run` nodes behind Kamailio, sharing one PostgreSQL database for storage and the ledger:
they split the campaign's leads without dialling one twice at once, keep the frequency cap together, reach their
agents through Kamailio, and one node's kill -9 and restart recovers only its own calls and leads."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dialer.storage import open_store
from tests.dialer.e2e.test_run_daemon import DaemonProcess, write_config
from tests.dialer.multinode.conftest import cap_24h, campaign_settled, node_config, rows
from tests.dialer.runtime.conftest import lead, numbers_in_window

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[3]
NODE_AGENTS = {"node-a": ["agent1", "agent2"], "node-b": ["agent3", "agent4"]}


@pytest.fixture
async def nodes():
    started: list[DaemonProcess] = []

    async def start(config_path: Path) -> DaemonProcess:
        daemon = DaemonProcess(config_path)
        started.append(daemon)
        return await daemon.start()

    yield start
    for daemon in started:
        daemon.kill(signal.SIGKILL)
        if daemon.process is not None:
            await daemon.process.wait()


async def add_leads(dsn: str, numbers: list[str], campaigns: tuple[str, ...]) -> None:
    store = await open_store(dsn, node="import")
    try:
        for campaign in campaigns:
            await store.add_leads(campaign, [lead(n) for n in numbers], datetime.now(timezone.utc))
    finally:
        await store.close()


async def start_node(nodes, tmp_path: Path, name: str, config: dict) -> DaemonProcess:
    node = await nodes(write_config(tmp_path / f"{name}.yaml", config))
    for agent_id in NODE_AGENTS[name]:
        status, body = await node.api("POST", f"/v1/agents/{agent_id}/login")
        assert status == 200, body
    return node


async def run_campaign_on_two_nodes(tmp_path: Path, dsn: str, carrier, kamailio, nodes, *,
                                    campaigns: dict[str, tuple[str, ...]] | None = None, leads: int = 16,
                                    **config: object) -> tuple[list[str], int, DaemonProcess, DaemonProcess]:
    """The same ``leads`` numbers in each campaign, in the shared database; both nodes started with their campaigns
    (``campaigns``: node name -> campaign names; by default both run c1), their agents logged in, every campaign
    started. Returns the numbers, the campaigns' 24 h cap per number and the two nodes."""
    campaigns = campaigns or {name: ("c1",) for name in NODE_AGENTS}
    numbers = numbers_in_window(leads)
    await add_leads(dsn, numbers, tuple(sorted({c for names in campaigns.values() for c in names})))
    configs = {name: node_config(tmp_path, name, dsn, carrier.port, kamailio, agents, campaigns=campaigns[name],
                                 **config) for name, agents in NODE_AGENTS.items()}
    running = [await start_node(nodes, tmp_path, name, config) for name, config in configs.items()]
    for node, name in zip(running, configs):
        for campaign in campaigns[name]:
            status, body = await node.api("POST", f"/v1/campaigns/{campaign}/start")
            assert status == 200, body
    return numbers, cap_24h(configs["node-a"]), running[0], running[1]


async def wait_settled(dsn: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await campaign_settled(dsn):
        if loop.time() > deadline:
            leads = await rows(dsn, "SELECT id, status, attempts, claimed_by, next_attempt_at FROM leads ORDER BY id")
            raise AssertionError(f"campaign did not settle: {[dict(r) for r in leads]}")
        await asyncio.sleep(0.2)


def carrier_call_ids(carrier) -> set[str]:
    text = carrier.message_log.read_text(errors="replace") if carrier.message_log.exists() else ""
    return set(re.findall(r"^INVITE \S+ SIP/2\.0\s.*?^Call-ID:\s*(\S+)", text, flags=re.MULTILINE | re.DOTALL))


async def assert_leads_never_dialled_twice_at_once(dsn: str) -> None:
    by_lead: dict[int, list] = defaultdict(list)
    for cdr in await rows(dsn, "SELECT lead_id, node, started_at, ended_at FROM cdrs ORDER BY lead_id, started_at"):
        by_lead[cdr["lead_id"]].append(cdr)
    for lead_id, cdrs in by_lead.items():
        for earlier, later in zip(cdrs, cdrs[1:]):
            assert earlier["ended_at"] is not None and earlier["ended_at"] <= later["started_at"], (
                f"lead {lead_id}: {earlier['node']} call still live when {later['node']} dialled it: {cdrs}")


async def assert_caps_held(dsn: str, cap: int, numbers: list[str]) -> Counter:
    attempts = Counter({r["number"]: r["n"] for r in await rows(
        dsn, "SELECT number, COUNT(*) AS n FROM attempts GROUP BY number")})
    assert set(attempts) <= set(numbers)
    assert max(attempts.values()) <= cap, attempts
    return attempts


async def audit_verify(dsn: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "audit", "verify", "--db", dsn, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_two_nodes_behind_kamailio_share_leads_and_caps(tmp_path, kamailio, registered_phones,
                                                              busy_odd_carrier, shared_dsn, nodes) -> None:
    carrier = busy_odd_carrier
    numbers, cap, node_a, node_b = await run_campaign_on_two_nodes(tmp_path, shared_dsn, carrier, kamailio, nodes)
    busy = {n for n in numbers if int(n[-1]) % 2}
    assert busy and busy != set(numbers)
    await wait_settled(shared_dsn, timeout=45)
    for node in (node_a, node_b):
        node.kill(signal.SIGTERM)
    assert [await node_a.wait(), await node_b.wait()] == [0, 0]

    cdrs = await rows(shared_dsn, "SELECT call_id, node, lead_id, agent_id, bridged_at, ended_at, outcome FROM cdrs")
    per_node = Counter(c["node"] for c in cdrs)
    assert set(per_node) == {"node-a", "node-b"}, per_node  # both nodes dialled
    bridged = {c["node"] for c in cdrs if c["bridged_at"] is not None}
    assert bridged == {"node-a", "node-b"}, cdrs  # both bridged calls to their own agents
    for c in cdrs:
        if c["agent_id"] is not None:
            assert c["agent_id"] in NODE_AGENTS[c["node"]], c
    assert all(c["ended_at"] is not None for c in cdrs)
    # every call the carrier saw has its CDR in the shared database, and every reserved attempt was dialled
    attempts = await assert_caps_held(shared_dsn, cap, numbers)
    assert len(carrier_call_ids(carrier)) == len(cdrs) == sum(attempts.values())
    await assert_leads_never_dialled_twice_at_once(shared_dsn)
    assert {n for n, count in attempts.items() if count == cap} == busy  # busy numbers were retried up to the cap
    capped = {r["number"] for r in await rows(shared_dsn, "SELECT number FROM audit WHERE reason = 'frequency_cap'")}
    assert capped == busy
    leads = {r["e164"]: r["status"] for r in await rows(shared_dsn, "SELECT e164, status FROM leads")}
    assert all(leads[n] == "done" for n in set(numbers) - busy), leads
    # agents were reached through Kamailio: each agent's INVITE relayed, from the two nodes' two SIP addresses
    relayed = kamailio.relayed_invites()
    assert {user for user, _ in relayed} == {a for agents in NODE_AGENTS.values() for a in agents}, relayed
    assert len({source for _, source in relayed}) == 2, relayed
    routed = Counter(kamailio.in_dialog_methods())  # the agent legs' ACKs, and BYEs at the nodes' SIGTERM
    assert routed["ACK"] >= 4 and routed["BYE"] >= 4, routed
    assert "intact" in await audit_verify(shared_dsn)


@pytest.mark.parametrize("busy_odd_carrier", [{"ring_ms": 3000, "talk_ms": 1500}], indirect=True)
async def test_kill_9_of_one_node_recovers_only_its_own_calls_and_leads(tmp_path, kamailio, registered_phones,
                                                                       busy_odd_carrier, shared_dsn, nodes) -> None:
    carrier = busy_odd_carrier
    numbers, cap, node_a, node_b = await run_campaign_on_two_nodes(tmp_path, shared_dsn, carrier, kamailio, nodes)

    async def ringing_on_a() -> bool:  # a live call on node-a whose lead node-a still holds (not yet answered)
        return bool(await rows(shared_dsn, "SELECT 1 FROM cdrs JOIN leads ON leads.id = cdrs.lead_id"
                                           " WHERE cdrs.node = 'node-a' AND cdrs.ended_at IS NULL"
                                           " AND leads.claimed_by = 'node-a'"))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not await ringing_on_a():
        assert loop.time() < deadline, "node-a never had a call ringing"
        await asyncio.sleep(0.1)
    node_a.kill(signal.SIGKILL)
    assert await node_a.wait() == -signal.SIGKILL

    live_a = {r["call_id"] for r in await rows(shared_dsn, "SELECT call_id FROM cdrs WHERE node = 'node-a'"
                                                           " AND ended_at IS NULL")}
    claimed_a = {r["id"] for r in await rows(shared_dsn, "SELECT id FROM leads WHERE claimed_by = 'node-a'"
                                                         " AND status = 'dialing'")}
    attempts_at_kill = [tuple(r) for r in await rows(shared_dsn, "SELECT id, number FROM attempts ORDER BY id")]
    cdrs_b_at_kill = len(await rows(shared_dsn, "SELECT 1 FROM cdrs WHERE node = 'node-b'"))
    assert live_a and claimed_a

    # node-b keeps dialling while node-a is down, and leaves node-a's claimed leads alone
    deadline = loop.time() + 20
    while len(await rows(shared_dsn, "SELECT 1 FROM cdrs WHERE node = 'node-b'")) <= cdrs_b_at_kill:
        assert loop.time() < deadline, "node-b stopped dialling when node-a died"
        await asyncio.sleep(0.1)
    assert {r["id"] for r in await rows(shared_dsn, "SELECT id FROM leads WHERE claimed_by = 'node-a'"
                                                    " AND status = 'dialing'")} == claimed_a
    ended_b_before_restart = {tuple(r) for r in await rows(
        shared_dsn, "SELECT call_id, ended_at, outcome, hangup_by FROM cdrs WHERE node = 'node-b' AND ended_at IS NOT NULL")}

    node_a = await nodes(tmp_path / "node-a.yaml")  # its agents' sessions and the running campaign resume
    await node_a.wait_for_line(rf"crash recovery: node=node-a closed_live_cdrs={len(live_a)} "
                               rf"released_leads={len(claimed_a)}\b")
    closed = await rows(shared_dsn, "SELECT call_id, outcome, hangup_by, ended_at FROM cdrs WHERE call_id = ANY($1)",
                        list(live_a))
    assert all(c["outcome"] == "failed" and c["hangup_by"] == "crash" and c["ended_at"] for c in closed), closed
    ended_b_after_restart = {tuple(r) for r in await rows(
        shared_dsn, "SELECT call_id, ended_at, outcome, hangup_by FROM cdrs WHERE node = 'node-b' AND ended_at IS NOT NULL")}
    assert ended_b_before_restart <= ended_b_after_restart  # node-b's records untouched by node-a's recovery

    await wait_settled(shared_dsn, timeout=45)
    for node in (node_a, node_b):
        node.kill(signal.SIGTERM)
    assert [await node_a.wait(), await node_b.wait()] == [0, 0]

    assert await rows(shared_dsn, "SELECT call_id FROM cdrs WHERE node = 'node-b' AND hangup_by = 'crash'") == []
    assert await rows(shared_dsn, "SELECT call_id FROM cdrs WHERE ended_at IS NULL") == []
    after = [tuple(r) for r in await rows(shared_dsn, "SELECT id, number FROM attempts ORDER BY id")]
    assert after[:len(attempts_at_kill)] == attempts_at_kill  # no committed reservation lost
    attempts = await assert_caps_held(shared_dsn, cap, numbers)
    cdrs = await rows(shared_dsn, "SELECT node FROM cdrs")
    assert len(carrier_call_ids(carrier)) <= len(cdrs) <= sum(attempts.values())
    assert {c["node"] for c in cdrs} == {"node-a", "node-b"}
    await assert_leads_never_dialled_twice_at_once(shared_dsn)
    released = {r["id"]: r["status"] for r in await rows(shared_dsn, "SELECT id, status FROM leads WHERE id = ANY($1)",
                                                         list(claimed_a))}
    assert set(released.values()) <= {"done", "scheduled"}, released  # dialled again, or waiting out the cap
    assert "intact" in await audit_verify(shared_dsn)


async def test_last_attempt_under_the_cap_goes_to_one_node_only(tmp_path, kamailio, registered_phones,
                                                                  busy_odd_carrier, shared_dsn, nodes) -> None:
    """Node-a runs campaign c1, node-b c2, over the same numbers: both nodes reserve each number at about the same
    moments. With 3 attempts per number across campaigns, busy numbers are retried by both nodes and they race for
    the third attempt: exactly one of them gets it, the other is refused with frequency_cap."""
    numbers, cap, node_a, node_b = await run_campaign_on_two_nodes(
        tmp_path, shared_dsn, busy_odd_carrier, kamailio, nodes, campaigns={"node-a": ("c1",), "node-b": ("c2",)},
        leads=10, cap_24h=3)
    assert cap == 3
    await wait_settled(shared_dsn, timeout=50)
    for node in (node_a, node_b):
        node.kill(signal.SIGTERM)
    assert [await node_a.wait(), await node_b.wait()] == [0, 0]

    busy = {n for n in numbers if int(n[-1]) % 2}
    attempts = await assert_caps_held(shared_dsn, cap, numbers)
    assert {n: attempts[n] for n in busy} == {n: cap for n in busy}, attempts  # the cap reached, never passed
    assert all(attempts[n] == 2 for n in set(numbers) - busy), attempts  # answered once in each campaign
    dialled_by = defaultdict(set)
    for r in await rows(shared_dsn, "SELECT leads.e164, cdrs.node FROM cdrs JOIN leads ON leads.id = cdrs.lead_id"):
        dialled_by[r["e164"]].add(r["node"])
    assert all(dialled_by[n] == set(NODE_AGENTS) for n in numbers), dialled_by
    assert len(await rows(shared_dsn, "SELECT 1 FROM cdrs")) == sum(attempts.values())
    refused = await rows(shared_dsn, "SELECT number, campaign FROM audit WHERE reason = 'frequency_cap'")
    assert {r["number"] for r in refused} == busy  # each busy number's loser (and later retries) refused
    assert "intact" in await audit_verify(shared_dsn)
