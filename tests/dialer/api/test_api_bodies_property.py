"""Property: whatever JSON (or bytes) a client posts, the API answers 2xx or a JSON 400 naming the problem,
never a 500, and the engine is only called with a body that matches the schema."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.api import create_app

TOKEN = "property-token-0123456789"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
lead_like = st.fixed_dictionaries(
    {}, optional={"number": json_values | st.text(max_size=20), "fields": json_values | st.dictionaries(
        st.text(max_size=8), st.text(max_size=8), max_size=3), "extra": json_values}
)
bodies = st.one_of(json_values.map(json.dumps), lead_like.map(json.dumps), st.binary(max_size=40).map(repr))


class RecordingControl:
    def __init__(self):
        self.leads: list[tuple] = []

    async def add_lead(self, campaign, number, fields):
        self.leads.append((campaign, number, fields))
        return {"added": True}

    async def agent_disposition(self, agent_id, call_id, disposition):
        return {"ok": True}


@pytest.fixture(scope="module")
def served():
    """One server for every example, on a loop of its own (hypothesis drives the examples synchronously)."""
    loop = asyncio.new_event_loop()
    control = RecordingControl()
    client = TestClient(TestServer(create_app(control, TOKEN)), loop=loop)
    loop.run_until_complete(client.start_server())
    yield loop, client, control
    loop.run_until_complete(client.close())
    loop.close()


async def post(client: TestClient, body: str, path: str) -> tuple[int, dict]:
    response = await client.post(path, data=body.encode(), headers={"Authorization": f"Bearer {TOKEN}"})
    return response.status, await response.json()


@settings(max_examples=60, deadline=None)
@given(body=bodies, path=st.sampled_from(["/v1/campaigns/spring/leads", "/v1/agents/alice/disposition"]))
def test_any_body_gets_success_or_a_named_400(served, body, path):
    loop, client, control = served
    control.leads.clear()
    status, answer = loop.run_until_complete(post(client, body, path))
    assert status in (200, 201, 400), (status, answer)
    if status == 400:
        assert answer["error"] and ":" in answer["error"]
        assert control.leads == []
    for campaign, number, fields in control.leads:
        assert campaign == "spring" and isinstance(number, str) and number
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
