"""The HTTP API against a fake EngineControl: every route, auth on every route, bad bodies, engine errors,
and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from dialer.api import ROUTES, create_app, start_api
from dialer.errors import BadRequest, Conflict, NotFound

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeControl:
    """Records each call; names in `missing` raise NotFound, in `busy` raise Conflict."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.missing: set[str] = set()
        self.busy: set[str] = set()

    def _answer(self, method: str, *args) -> dict:
        self.calls.append((method, *args))
        if args and args[0] in self.missing:
            raise NotFound(f"no such campaign or agent: {args[0]}")
        if args and args[0] in self.busy:
            raise Conflict(f"{args[0]} is busy")
        return {"method": method, "args": list(args)}

    async def campaign_start(self, name): return self._answer("campaign_start", name)
    async def campaign_pause(self, name): return self._answer("campaign_pause", name)
    async def campaign_stop(self, name): return self._answer("campaign_stop", name)
    async def campaign_status(self, name): return self._answer("campaign_status", name)
    async def agent_login(self, agent_id): return self._answer("agent_login", agent_id)
    async def agent_ready(self, agent_id): return self._answer("agent_ready", agent_id)
    async def agent_pause(self, agent_id): return self._answer("agent_pause", agent_id)
    async def agent_logout(self, agent_id): return self._answer("agent_logout", agent_id)

    async def agent_disposition(self, agent_id, call_id, disposition):
        return self._answer("agent_disposition", agent_id, call_id, disposition)

    async def add_lead(self, campaign, number, fields):
        if number == "not-a-number":
            raise BadRequest("number: not a phone number")
        return self._answer("add_lead", campaign, number, fields)

    def live_status(self):
        return self._answer("live_status")


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
async def client(control) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(control, TOKEN))) as test_client:
        yield test_client


GOOD_BODIES = {
    "/v1/campaigns/{name}/leads": {"number": "+8613800138000", "fields": {"name": "Li"}},
    "/v1/agents/{agent_id}/disposition": {"call_id": "c-1", "disposition": "sale"},
}
EXPECTED_CALLS = {
    "campaign_start": ("campaign_start", "spring"),
    "campaign_pause": ("campaign_pause", "spring"),
    "campaign_stop": ("campaign_stop", "spring"),
    "campaign_status": ("campaign_status", "spring"),
    "add_lead": ("add_lead", "spring", "+8613800138000", {"name": "Li"}),
    "agent_login": ("agent_login", "alice"),
    "agent_ready": ("agent_ready", "alice"),
    "agent_pause": ("agent_pause", "alice"),
    "agent_logout": ("agent_logout", "alice"),
    "agent_disposition": ("agent_disposition", "alice", "c-1", "sale"),
    "live_status": ("live_status",),
}
ENGINE_ROUTES = [route for route in ROUTES if not route.public]


def url(route) -> str:
    return route.path.format(name="spring", agent_id="alice")


def test_every_engine_route_is_tested():
    assert {route.operation_id for route in ENGINE_ROUTES} == set(EXPECTED_CALLS)


@pytest.mark.parametrize("route", ENGINE_ROUTES, ids=lambda r: r.operation_id)
async def test_route_calls_the_engine_and_returns_its_answer(client, control, route):
    response = await client.request(route.method, url(route), headers=AUTH, json=GOOD_BODIES.get(route.path))
    assert response.status == route.success_status
    expected = EXPECTED_CALLS[route.operation_id]
    assert control.calls == [expected]
    assert await response.json() == {"method": expected[0], "args": list(expected[1:])}


@pytest.mark.parametrize("route", ENGINE_ROUTES, ids=lambda r: r.operation_id)
@pytest.mark.parametrize(
    ("headers", "error", "challenge"),
    [
        ({}, "missing bearer token", 'Bearer realm="dialer"'),
        ({"Authorization": "Bearer wrong-token-0123456789abc"}, "invalid bearer token",
         'Bearer realm="dialer", error="invalid_token"'),
        ({"Authorization": f"Basic {TOKEN}"}, "missing bearer token", 'Bearer realm="dialer"'),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid bearer token",
         'Bearer realm="dialer", error="invalid_token"'),
        ({"Authorization": "Bearer "}, "missing bearer token", 'Bearer realm="dialer"'),
    ],
    ids=["missing", "wrong", "not-bearer", "token-prefix", "empty"],
)
async def test_every_route_refuses_a_missing_or_wrong_token(client, control, route, headers, error, challenge):
    response = await client.request(route.method, url(route), headers=headers, json=GOOD_BODIES.get(route.path))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert error in (await response.json())["error"]
    assert control.calls == []


async def test_unknown_paths_need_the_token_too_and_answer_json(client):
    assert (await client.get("/v1/nothing")).status == 401
    response = await client.get("/v1/nothing", headers=AUTH)
    assert (response.status, await response.json()) == (404, {"error": "Not Found"})
    wrong_method = await client.delete("/v1/status", headers=AUTH)
    assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]
    assert (await wrong_method.json())["error"] == "Method Not Allowed"


@pytest.mark.parametrize(
    ("path", "data", "error", "field"),
    [
        ("/v1/campaigns/spring/leads", b"{not json", "body: not valid JSON", None),
        ("/v1/campaigns/spring/leads", b"", "body: must be a JSON object", None),
        ("/v1/campaigns/spring/leads", b"[1, 2]", "body: must be a JSON object", None),
        ("/v1/campaigns/spring/leads", b"\xff\xfe", "body: not valid JSON", None),
        ("/v1/campaigns/spring/leads", b"{}", "number: Field required", "number"),
        ("/v1/campaigns/spring/leads", b'{"number": 8613800138000}', "number: Input should be a valid string",
         "number"),
        ("/v1/campaigns/spring/leads", b'{"number": ""}', "number: String should have at least 1 character",
         "number"),
        ("/v1/campaigns/spring/leads", b'{"number": "+1", "fields": {"age": 5}}',
         "fields.age: Input should be a valid string", "fields.age"),
        ("/v1/campaigns/spring/leads", b'{"number": "+1", "colour": "red"}', "colour: Extra inputs are not permitted",
         "colour"),
        ("/v1/agents/alice/disposition", b'{"call_id": "c-1"}', "disposition: Field required", "disposition"),
        ("/v1/agents/alice/disposition", b'{"disposition": "sale"}', "call_id: Field required", "call_id"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(client, control, path, data, error, field):
    response = await client.post(path, data=data, headers=AUTH | {"Content-Type": "application/json"})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == error
    assert body.get("field") == field
    assert control.calls == []


async def test_engine_errors_map_to_404_409_400(client, control):
    control.missing.add("ghost")
    control.busy.add("bob")
    missing = await client.post("/v1/campaigns/ghost/start", headers=AUTH)
    assert (missing.status, await missing.json()) == (404, {"error": "no such campaign or agent: ghost"})
    busy = await client.post("/v1/agents/bob/logout", headers=AUTH)
    assert (busy.status, await busy.json()) == (409, {"error": "bob is busy"})
    refused = await client.post("/v1/campaigns/spring/leads", headers=AUTH, json={"number": "not-a-number"})
    assert (refused.status, await refused.json()) == (400, {"error": "number: not a phone number"})


async def test_unexpected_engine_failure_is_a_json_500_logged_with_numbers_masked(client, control, caplog):
    async def explode(name):
        raise RuntimeError("secret internals while dialling +8613800138000")
    control.campaign_start = explode
    response = await client.post("/v1/campaigns/spring/start", headers=AUTH)
    assert (response.status, await response.json()) == (500, {"error": "internal error"})
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "dialer.api")
    assert "RuntimeError: secret internals while dialling +86138****8000" in logged
    assert "8613800138000" not in logged


async def test_openapi_document_is_public_valid_and_lists_every_route(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)  # the OpenAPI 3.1 schema, via openapi-spec-validator
    assert document["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert listed == {(route.method, route.path) for route in ROUTES}
    for route in ENGINE_ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert "401" in operation["responses"] and "security" not in operation  # inherits the global bearer rule
        assert [p["name"] for p in operation.get("parameters", [])] == route.path_parameters
        if route.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert set(schema["required"]) <= set(schema["properties"])
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}


async def test_start_api_binds_a_free_port_and_serves(control):
    runner, port = await start_api(create_app(control, TOKEN), "127.0.0.1", 0)
    try:
        assert port > 0
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/v1/status", headers=AUTH) as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


def test_an_empty_token_is_refused(control):
    with pytest.raises(ValueError, match="token must not be empty"):
        create_app(control, "")


async def test_an_oversized_body_is_a_json_413(client, control):
    response = await client.post("/v1/campaigns/spring/leads", headers=AUTH, data=b"x" * (1024**2 + 1))
    assert response.status == 413
    assert "error" in await response.json()
    assert control.calls == []
