"""The runtime Engine driving the real core, store and gate, with the simulated telephony backend on real time."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import pytest

from dialer.runtime import Engine
from tests.dialer.simulated_telephony import SimulatedCarrier, SimulatedTelephony
from tests.dialer.runtime.conftest import TOKEN, engine_config, lead, now_utc, numbers_in_window, wait_for

pytestmark = pytest.mark.timeout(30)


def fast_carrier(**mix: float) -> SimulatedTelephony:
    carrier = SimulatedCarrier(ring_mean_s=0.2, ring_sd_s=0.05, talk_mean_s=0.3, talk_sd_s=0.05, patience_s=5,
                               announcement_s=0.1, **mix)
    return SimulatedTelephony(carrier, seed=1)


async def api(engine: Engine, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.request(method, f"http://127.0.0.1:{engine.api_port}{path}", json=body) as response:
            return response.status, await response.json()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dialer.db'}"
    return request.getfixturevalue("fresh_postgres")


async def test_answered_calls_are_bridged_recorded_and_settled(tmp_path, database) -> None:
    telephony = fast_carrier(answer_rate=1.0, busy_rate=0, invalid_rate=0)
    engine = Engine(engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}}, database=database),
                    telephony=telephony)
    await engine.start()
    try:
        numbers = numbers_in_window(4)
        await engine.store.add_leads("c1", [lead(n) for n in numbers], now_utc())
        for agent in ("a1", "a2"):
            assert (await api(engine, "POST", f"/v1/agents/{agent}/login"))[0] == 200
        await wait_for(lambda: engine.live_status()["agents"]["ready"] == 2)
        status, body = await api(engine, "POST", "/v1/campaigns/c1/start")
        assert status == 200 and body["state"] == "running"
        await wait_for(lambda: len(telephony.bridges) == 4 and not engine.core.calls)
        await engine.flush()
        await asyncio.sleep(0.3)
        counts = await engine.store.count_leads("c1")
        assert counts["done"] == 4
        assert {l.last_outcome for l in await engine.store.list_leads("c1")} == {"answered"}
        cdrs = [c async for c in engine.store.export_cdrs(campaign="c1")]
        assert len(cdrs) == 4
        for cdr in cdrs:
            assert cdr.outcome == "answered" and cdr.agent_id in ("a1", "a2") and not cdr.abandoned
            assert cdr.started_at <= cdr.answered_at <= cdr.bridged_at <= cdr.ended_at
            assert cdr.recording_path.endswith(f"{cdr.call_id}.wav")
        assert {str(path) for _, _, path in telephony.bridges} == {c.recording_path for c in cdrs}
        assert await engine.gate.ledger.attempts_count() == 4
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{engine.metrics_port}/metrics") as response:
                exposition = await response.text()
        assert 'dialer_calls_total{campaign="c1",outcome="answered"} 4.0' in exposition
        assert 'dialer_gate_decisions_total{campaign="c1",reason="ok"} 4.0' in exposition
    finally:
        await engine.stop(grace_s=1)


async def test_gate_refusal_is_never_originated_and_is_rescheduled(tmp_path) -> None:
    telephony = fast_carrier(answer_rate=0.0, busy_rate=1.0, invalid_rate=0)
    engine = Engine(engine_config(tmp_path, agents=1, campaign={"compliance": {"rule_pack": "us"}}),
                    telephony=telephony)
    await engine.start()
    try:
        [outside] = numbers_in_window(1, inside=False)
        [inside] = numbers_in_window(1)
        await engine.store.add_leads("c1", [lead(outside), lead(inside)], now_utc())
        await api(engine, "POST", "/v1/agents/a1/login")
        await wait_for(lambda: engine.live_status()["agents"]["ready"] == 1)
        await api(engine, "POST", "/v1/campaigns/c1/start")
        await wait_for(lambda: engine.tally.gate_refusals["outside_calling_window"] == 1
                       and sum(1 for _ in telephony._calls) >= 2)  # the agent leg and one customer call
        await wait_for(lambda: not engine.core.calls)
        await engine.flush()
        await asyncio.sleep(0.3)
        customer_calls = [c for c in telephony._calls if c.startswith("sim-")]
        assert len(customer_calls) == 1  # only the number inside its window was dialled
        leads = {l.e164: l for l in await engine.store.list_leads("c1")}
        assert leads[outside].attempts == 0 and leads[outside].status == "scheduled"
        assert leads[outside].next_attempt_at > now_utc()
        assert leads[inside].attempts == 1 and leads[inside].status == "scheduled"  # busy: retried later
        assert (leads[outside].last_outcome, leads[inside].last_outcome) == ("outside_calling_window", "busy")
    finally:
        await engine.stop(grace_s=1)


async def test_unregistered_caller_id_cannot_start(tmp_path) -> None:
    engine = Engine(engine_config(tmp_path, campaign={"caller_id": "+8613800138000", "compliance": {"rule_pack": "cn"}}),
                    telephony=fast_carrier())
    await engine.start()
    try:
        status, body = await api(engine, "POST", "/v1/campaigns/c1/start")
        assert status == 409 and "caller_id_unregistered" in body["error"]
        assert engine.core.campaigns["c1"].state == "stopped"
        await engine.gate.ledger.register_caller_id("+8613800138000", True, now_utc())
        status, body = await api(engine, "POST", "/v1/campaigns/c1/start")
        assert status == 200 and body["state"] == "running"
    finally:
        await engine.stop(grace_s=0)


async def test_stop_lets_live_calls_finish_within_grace_then_hangs_up_the_rest(tmp_path) -> None:
    telephony = fast_carrier(answer_rate=1.0, busy_rate=0, invalid_rate=0)
    engine = Engine(engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}}), telephony=telephony)
    await engine.start()
    numbers = numbers_in_window(2)
    await engine.store.add_leads("c1", [lead(n) for n in numbers], now_utc())
    for agent in ("a1", "a2"):
        await engine.control_call("agent_login", agent)
    await wait_for(lambda: engine.live_status()["agents"]["ready"] == 2)
    await engine.control_call("campaign_start", "c1")
    await wait_for(lambda: len(telephony.bridges) == 2)
    calls = [telephony._calls[a] if a.startswith("sim-") else telephony._calls[b] for a, b, _ in telephony.bridges]
    calls[0].talk_s, calls[1].talk_s = 0.0, 60.0  # already scheduled: the first ends at its own pace ...
    calls[1].task.cancel()  # ... the second would talk for a minute
    database = engine.config.node.database
    await engine.stop(grace_s=1.0)
    from dialer.storage import open_store

    store = await open_store(database, node="check")
    try:
        cdrs = {c.call_id: c async for c in store.export_cdrs()}
        campaign = await store.get_campaign("c1")
        open_sessions = await store.open_agent_sessions()
    finally:
        await store.close()
    assert len(cdrs) == 2 and all(c.ended_at is not None for c in cdrs.values())
    assert sorted(c.hangup_by for c in cdrs.values()) == ["local", "remote"]  # one finished, one cut at the grace
    assert campaign.state == "running"  # a restart resumes it ...
    assert open_sessions == []  # ... but agents whose phones were hung up log in again themselves


async def test_control_errors_and_config_reload(tmp_path) -> None:
    engine = Engine(engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}}), telephony=fast_carrier())
    await engine.start()
    try:
        assert (await api(engine, "POST", "/v1/campaigns/nope/start"))[0] == 404
        assert (await api(engine, "POST", "/v1/agents/ghost/login"))[0] == 404
        assert (await api(engine, "POST", "/v1/agents/a1/ready"))[0] == 404  # not logged in
        await api(engine, "POST", "/v1/agents/a1/login")
        status, body = await api(engine, "POST", "/v1/agents/a1/disposition", {"call_id": "x", "disposition": "sale"})
        assert status == 409 and "no call" in body["error"]
        status, body = await api(engine, "POST", "/v1/campaigns/c1/leads", {"number": "12"})
        assert status == 400 and body["error"].startswith("number:")
        [number] = numbers_in_window(1)
        assert (await api(engine, "POST", "/v1/campaigns/c1/leads", {"number": number}))[0] == 201
        assert (await api(engine, "POST", "/v1/campaigns/c1/leads", {"number": number}))[0] == 409
        changed = engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}, "wrap_up_s": 7,
                                                    "pacing": {"mode": "predictive", "interval_s": 0.5}},
                                shutdown_grace_s=9)
        needs_restart = await engine.reload(changed)
        run = engine.core.campaigns["c1"]
        assert run.settings.wrap_up_s == 7 and run.settings.pacing.mode == "predictive"
        assert needs_restart == ["node"] and engine.config.node.shutdown_grace_s == 5  # node waits for a restart
    finally:
        await engine.stop(grace_s=0)


def is_frozen(obj: object) -> bool:
    """gc.get_objects() lists every tracked object except those gc.freeze() moved to the permanent generation."""
    return not any(o is obj for o in gc.get_objects())


async def test_start_freezes_the_start_up_objects_and_stop_releases_them(tmp_path) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    engine = Engine(engine_config(tmp_path, campaign={"compliance": {"rule_pack": "us"}}), telephony=fast_carrier())
    await engine.start()
    try:
        assert gc.get_freeze_count() > 0
        assert is_frozen(engine.core) and is_frozen(engine.contexts)  # long-lived: out of the collector's scans
        assert not is_frozen([])  # what calls allocate after start is still collected
    finally:
        await engine.stop(grace_s=0)
    assert gc.get_freeze_count() == 0 and not is_frozen(engine.core)
