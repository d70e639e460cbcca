"""The one route table: the app's router and the OpenAPI document are both built from it, so they cannot drift."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from dialer.engine_control import EngineControl


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispositionBody(Body):
    call_id: str = Field(..., min_length=1, max_length=256, description="the call the agent just finished")
    disposition: str = Field(..., min_length=1, max_length=64, description="the outcome the agent chose, e.g. sale")


class LeadBody(Body):
    number: str = Field(
        ..., min_length=1, max_length=64, description="phone number; E.164 (+CC...) or national in the campaign's country"
    )
    fields: dict[str, str] = Field(default_factory=dict, description="extra lead fields shown to the agent")


Action = Callable[["EngineControl", dict[str, str], BaseModel | None], Awaitable[dict] | dict]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    action: Action | None  # None: served by the app itself (the OpenAPI document)
    body: type[Body] | None = None
    success_status: int = 200
    public: bool = False

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


def _campaign(verb: str, summary: str) -> Route:
    method = f"campaign_{verb}"
    return Route("POST", f"/v1/campaigns/{{name}}/{verb}", method, summary, "campaigns",
                 lambda control, params, body: getattr(control, method)(params["name"]))


def _agent(verb: str, summary: str) -> Route:
    method = f"agent_{verb}"
    return Route("POST", f"/v1/agents/{{agent_id}}/{verb}", method, summary, "agents",
                 lambda control, params, body: getattr(control, method)(params["agent_id"]))


ROUTES: tuple[Route, ...] = (
    _campaign("start", "Start dialling the campaign (checks its caller ID registration first)"),
    _campaign("pause", "Stop launching new calls; calls in progress continue"),
    _campaign("stop", "Stop the campaign; calls in progress continue to their end"),
    Route("GET", "/v1/campaigns/{name}", "campaign_status", "The campaign's state and live figures", "campaigns",
          lambda control, params, body: control.campaign_status(params["name"])),
    Route("POST", "/v1/campaigns/{name}/leads", "add_lead", "Add one lead to the campaign", "leads",
          lambda control, params, body: control.add_lead(params["name"], body.number, dict(body.fields)),
          body=LeadBody, success_status=201),
    _agent("login", "Log the agent in: the engine calls the agent's phone and keeps that leg up"),
    _agent("ready", "The agent is ready for calls"),
    _agent("pause", "The agent takes no calls until ready again"),
    _agent("logout", "Log the agent out and hang up the agent's leg"),
    Route("POST", "/v1/agents/{agent_id}/disposition", "agent_disposition",
          "Record the disposition of the agent's last call (ends wrap-up)", "agents",
          lambda control, params, body: control.agent_disposition(params["agent_id"], body.call_id, body.disposition),
          body=DispositionBody),
    Route("GET", "/v1/status", "live_status", "Live status: campaigns, agents by state, calls in flight", "status",
          lambda control, params, body: control.live_status()),
    Route("GET", "/openapi.json", "openapi", "This OpenAPI 3.1 document", "meta", None, public=True),
)
