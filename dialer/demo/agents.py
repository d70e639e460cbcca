"""The demo's simulated agents: SIP UAs of ours that answer their login leg and keep it up (sending audio), and
enter a disposition through the HTTP API during each wrap-up."""

from __future__ import annotations

import asyncio
import logging
import random

import aiohttp

from dialer.demo.peer import PeerCall, SimulatedPeer
from dialer.demo.settings import DemoAgents

log = logging.getLogger("dialer.demo.agents")

DISPOSITIONS = ("sale", "callback", "not_interested", "no_decision")


class DemoAgentPhones(SimulatedPeer):
    """N agent phones on one loopback endpoint; each agent is the user part of its URI."""

    name = "agents"

    def __init__(self, endpoint, media, audio, *, settings: DemoAgents, count: int, seed: int = 0) -> None:
        super().__init__(endpoint, media, audio)
        self.settings = settings
        self.agent_ids = [f"agent{i}" for i in range(1, count + 1)]
        self.rng = random.Random(seed)
        self.dispositions_sent = 0
        self._disposed: set[str] = set()

    def uri(self, agent_id: str) -> str:
        return f"sip:{agent_id}@127.0.0.1:{self.port}"

    def on_invite(self, call: PeerCall) -> None:
        if call.user not in self.agent_ids:
            call.respond(404)
            return
        self.spawn(call.answer())

    async def work(self, api_url: str, token: str) -> None:
        """Poll the live status; an agent in wrap-up enters a disposition for its last call after a short while."""
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(api_url, headers=headers) as http:
            while True:
                try:
                    async with http.get("/v1/status") as response:
                        status = await response.json()
                except aiohttp.ClientError as exc:
                    log.debug("status poll failed: %s", exc)
                    status = {}
                for agent_id, agent in status.get("agent_states", {}).items():
                    call_id = agent.get("last_call_id")
                    if agent.get("state") == "wrap_up" and call_id and call_id not in self._disposed:
                        self._disposed.add(call_id)
                        self.spawn(self._dispose(http, agent_id, call_id))
                await asyncio.sleep(self.settings.status_poll_s)

    async def _dispose(self, http: aiohttp.ClientSession, agent_id: str, call_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(self.settings.disposition_min_s, self.settings.disposition_max_s))
        body = {"call_id": call_id, "disposition": self.rng.choice(DISPOSITIONS)}
        try:
            async with http.post(f"/v1/agents/{agent_id}/disposition", json=body) as response:
                if response.status == 200:
                    self.dispositions_sent += 1
        except aiohttp.ClientError as exc:
            log.debug("disposition of %s failed: %s", agent_id, exc)
