"""Automatic list recycling (retry.recycle) in the running engine, on the simulated telephony backend."""

from __future__ import annotations

import asyncio

import pytest

from dialer.runtime import Engine
from tests.dialer.runtime.conftest import engine_config, lead, now_utc, numbers_in_window, wait_for
from tests.dialer.runtime.test_engine_simulated import api, fast_carrier

pytestmark = pytest.mark.timeout(30)


async def test_a_campaign_out_of_due_leads_recycles_closed_leads_up_to_max_passes(tmp_path) -> None:
    telephony = fast_carrier(answer_rate=0.0, busy_rate=1.0, invalid_rate=0)
    retry = {"busy": {"retry_after_s": None}, "max_attempts": 1,
             "recycle": {"outcomes": ["busy"], "recycle_after_s": 0, "max_passes": 1}}
    engine = Engine(engine_config(tmp_path, agents=1, campaign={"retry": retry, "compliance": {"rule_pack": "us"}}), telephony=telephony)
    await engine.start()
    try:
        [number] = numbers_in_window(1)
        await engine.store.add_leads("c1", [lead(number)], now_utc())
        await api(engine, "POST", "/v1/agents/a1/login")
        await wait_for(lambda: engine.live_status()["agents"]["ready"] == 1)
        await api(engine, "POST", "/v1/campaigns/c1/start")

        def customer_calls() -> int:
            return sum(1 for call in telephony._calls if call.startswith("sim-"))

        await wait_for(lambda: customer_calls() == 2)  # first pass, then the recycled pass
        await wait_for(lambda: not engine.core.calls)
        await engine.flush()

        for _ in range(100):
            [stored] = await engine.store.list_leads("c1")
            if stored.status == "closed" and stored.passes == 1:
                break
            await asyncio.sleep(0.05)
        assert (stored.status, stored.last_outcome, stored.passes, stored.attempts) == ("closed", "busy", 1, 1)
        await asyncio.sleep(0.5)  # five pacing intervals with no due lead
        assert customer_calls() == 2  # max_passes reached: not recycled again
        assert (await engine.store.list_leads("c1"))[0].status == "closed"
    finally:
        await engine.stop(grace_s=1)


@pytest.mark.parametrize("outcomes", [["answered"], ["dnc"], []])
def test_recycle_config_refuses_outcomes_that_may_not_be_recycled(tmp_path, outcomes) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"retry\.recycle\.outcomes"):
        engine_config(tmp_path, campaign={"retry": {"recycle": {"outcomes": outcomes}}})
