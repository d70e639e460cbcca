"""EngineControl for the HTTP API, backed by the running Engine and its core."""

from __future__ import annotations

from compliance.numbers import InvalidNumber
from dialer.core import events as ev
from dialer.errors import BadRequest, Conflict, NotFound
from dialer.leads_csv import normalize_number, region_of
from dialer.runtime.engine import Engine, utc_now
from dialer.storage import NewLead


class RuntimeControl:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ campaigns

    def _run(self, name: str):
        run = self.engine.core.campaigns.get(name)
        if run is None:
            raise NotFound(f"no campaign {name!r}; configured: {sorted(self.engine.core.campaigns)}")
        return run

    async def campaign_start(self, name: str) -> dict:
        self._run(name)
        if self.engine._stopping:
            raise Conflict("the node is shutting down")
        try:
            await self.engine.start_campaign(name)
        except PermissionError as exc:
            raise Conflict(str(exc)) from None
        return await self.campaign_status(name)

    async def campaign_pause(self, name: str) -> dict:
        return await self._halt(name, "paused", ev.CampaignPause(name))

    async def campaign_stop(self, name: str) -> dict:
        return await self._halt(name, "stopped", ev.CampaignStop(name))

    async def _halt(self, name: str, state: str, event: ev.Event) -> dict:
        self._run(name)
        await self.engine.store.set_campaign_state(name, state, utc_now())
        await self.engine.apply(event)
        return await self.campaign_status(name)

    async def campaign_status(self, name: str) -> dict:
        self._run(name)
        figures = self.engine.live_status()["campaigns"][name]
        return {"name": name, **figures, "leads": await self.engine.store.count_leads(name)}

    # ------------------------------------------------------------ agents

    def _agent(self, agent_id: str):
        agent = self.engine.core.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id!r} is not logged in")
        return agent

    def _agent_status(self, agent_id: str) -> dict:
        agent = self._agent(agent_id)
        return {"agent_id": agent_id, "state": agent.state, "call_id": agent.call_id,
                "last_call_id": agent.last_call_id}

    async def agent_login(self, agent_id: str) -> dict:
        if agent_id not in {a.id for a in self.engine.config.agents}:
            raise NotFound(f"no agent {agent_id!r} in the configuration")
        await self.engine.store.agent_login(agent_id, utc_now())
        await self.engine.apply(ev.AgentLoggedIn(agent_id))
        return self._agent_status(agent_id)

    async def agent_ready(self, agent_id: str) -> dict:
        self._agent(agent_id)
        await self.engine.apply(ev.AgentReady(agent_id))
        return self._agent_status(agent_id)

    async def agent_pause(self, agent_id: str) -> dict:
        self._agent(agent_id)
        await self.engine.apply(ev.AgentPaused(agent_id))
        return self._agent_status(agent_id)

    async def agent_logout(self, agent_id: str) -> dict:
        self._agent(agent_id)
        await self.engine.apply(ev.AgentLoggedOut(agent_id))
        return self._agent_status(agent_id)

    async def agent_disposition(self, agent_id: str, call_id: str, disposition: str) -> dict:
        agent = self._agent(agent_id)
        if agent.last_call_id != call_id:
            raise Conflict(f"agent {agent_id!r} has no call {call_id!r} to dispose (last: {agent.last_call_id})")
        await self.engine.apply(ev.Disposition(agent_id, call_id, disposition))
        return self._agent_status(agent_id)

    # ------------------------------------------------------------ leads and status

    async def add_lead(self, campaign: str, number: str, fields: dict) -> dict:
        run = self._run(campaign)
        try:
            parsed = normalize_number(number, region_of(run.settings.caller_id))
        except InvalidNumber as exc:
            raise BadRequest(f"number: {exc.reason}") from None
        result = await self.engine.store.add_leads(
            campaign, [NewLead(parsed.e164, number, parsed.time_zones, fields=dict(fields))], utc_now())
        if result.duplicates:
            raise Conflict("number: already a lead of this campaign")
        return {"campaign": campaign, "imported": result.imported}

    def live_status(self) -> dict:
        return self.engine.live_status()
