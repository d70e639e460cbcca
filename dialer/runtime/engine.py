"""The asyncio shell around EngineCore: one event loop's worth of work for one node.

It owns the store, the compliance gate, the telephony backend (the SIP switch by default), the metrics
exposition and the HTTP API. Events (timers at ``core.next_deadline()``, call progress from the switch,
API actions, answers to lead requests) go into one inbox; one driver task feeds them to the core and
carries out the commands in order. Whatever must survive a crash is written before the action it allows:
the gate reserves the attempt before the lead reaches the core, the CDR is opened before the INVITE, the
outcome and retry are written once the call is over.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

from compliance.gate import CampaignContext, Gate
from compliance.numbers import mask_number
from compliance.packs import PACKS_DIR
from dialer.config import CampaignSettings, DialerConfig
from dialer.core import EngineCore
from dialer.core import events as ev
from dialer.core.pacer import campaign_policy
from dialer.metrics import DialerMetrics, serve_metrics
from dialer.runtime.calls import CallTable, core_event
from dialer.runtime.clock import WallClock
from dialer.runtime.leads import serve_lead_request
from dialer.runtime.tally import RuntimeTally
from dialer.storage import Store, open_node_store
from dialer.telephony import Telephony

log = logging.getLogger("dialer.runtime")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ANNOUNCEMENT = REPO_ROOT / "config" / "announcements" / "abandoned.wav"
ATTEMPTED_OUTCOMES = frozenset(ev.Outcome.__args__)  # type: ignore[attr-defined]
FINISHED_OUTCOMES = frozenset({"answered"})  # a closed lead with this outcome was reached: "done"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Engine:
    def __init__(self, config: DialerConfig, *, telephony: Telephony | None = None, packs_dir: Path = PACKS_DIR,
                 serve_api: bool = True, serve_metrics: bool = True, seed: int = 0) -> None:
        self.config = config
        self.packs_dir = packs_dir
        self.telephony: Telephony | None = telephony
        self._owns_telephony = telephony is None
        self._serve_api = serve_api
        self._serve_metrics = serve_metrics
        self._seed = seed
        self.metrics = DialerMetrics()
        self.tally = RuntimeTally()
        self.calls = CallTable()
        self.store: Store | None = None
        self.gate: Gate | None = None
        self.core: EngineCore | None = None
        self.contexts: dict[str, CampaignContext] = {}
        self.api_port: int | None = None
        self.metrics_port: int | None = None
        self.sip_port: int | None = None
        self.started_at = 0.0
        self._inbox: deque[ev.Event] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._driver: asyncio.Task | None = None
        self._cap_watch: asyncio.Task | None = None
        self._api_runner = None
        self._metrics_server = None
        self._stopping = False
        self.clock: WallClock | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.clock = WallClock(loop.time())
        self.started_at = loop.time()
        node = self.config.node
        self.store = await open_node_store(node)
        self.gate = await Gate.open(node.database)
        now = utc_now()
        closed = await self.store.close_live_cdrs(node.name, now)
        released = await self.store.release_dialing_leads(node.name)
        if closed or released:
            log.warning("crash recovery: node=%s closed_live_cdrs=%d released_leads=%d", node.name, closed, released)
        self.contexts = {c.name: self._context(c) for c in self.config.campaigns}
        boot = f"{int(time.time()):x}{secrets.token_hex(2)}"
        self.core = EngineCore(
            self.config.campaigns, [(t.name, t.max_channels, t.max_cps) for t in self.config.trunks],
            self._policy, call_id_prefix=f"{node.name}.{boot}.",
        )
        if self.telephony is None:
            from sip.registrations import RegistrationStore
            from sip.switch import Switch

            registrations_file = self.config.node.registrations_file
            self.telephony = await Switch.start(
                self.config.sip, self.config.rtp, self.config.trunks, self.config.agents,
                RegistrationStore(registrations_file) if registrations_file is not None else None)
            self.telephony.on_provisional_response = self.metrics.observe_sip_response
            self.telephony.on_media_ended = self.metrics.observe_media
            self.sip_port = self.telephony.local_port(self.config.sip.transports[0])
        if self._serve_metrics:
            self._metrics_server, _ = serve_metrics(self.metrics.registry, self.config.metrics.bind_host,
                                                    self.config.metrics.port)
            self.metrics_port = self._metrics_server.server_port
        if self._serve_api:
            from dialer.api import create_app, start_api
            from dialer.runtime.control import RuntimeControl

            app = create_app(RuntimeControl(self), self.config.api.token)
            self._api_runner, self.api_port = await start_api(app, self.config.api.bind_host, self.config.api.port)
        self._driver = asyncio.create_task(self._drive(), name="engine-driver")
        self._cap_watch = asyncio.create_task(self._watch_abandon_caps(), name="abandon-cap-watch")
        configured_agents = {a.id for a in self.config.agents}
        for agent_id in await self.store.open_agent_sessions():  # agents logged in when the node last stopped
            if agent_id in configured_agents:
                await self.apply(ev.AgentLoggedIn(agent_id))
        for campaign in await self.store.list_campaigns():
            if campaign.state == "running" and campaign.name in self.core.campaigns:
                try:
                    await self.start_campaign(campaign.name)
                except PermissionError as exc:
                    log.error("not resuming: %s", exc)
        # Everything allocated so far (config, switch, stores, servers, imported modules) lives as long as the
        # process: take it out of the collector's scans, so a full collection walks only what calls allocate (the
        # media and SIP benchmarks measured full-collection pauses of 80 ms - 0.6 s without this, 0.4 - 13 ms with
        # it). Collect first so that start-up garbage is not frozen for good. The thresholds stay at Python's
        # default: raising the first to 10000 (benchmarks/sip_cps.py, 150 calls/s, frozen) only pushed the full
        # collection out of a 10 s window while the young collections' worst pause grew from ~7 ms to ~65-70 ms.
        gc.collect()
        gc.freeze()
        log.info("engine started: node=%s sip_port=%s api_port=%s metrics_port=%s", node.name, self.sip_port,
                 self.api_port, self.metrics_port)

    def _context(self, campaign: CampaignSettings) -> CampaignContext:
        return CampaignContext.from_settings(campaign.name, campaign.caller_id, campaign.compliance, self.packs_dir)

    def _policy(self, campaign: CampaignSettings):
        rules = self.contexts[campaign.name].rules
        return campaign_policy(campaign, abandon_window_s=rules.abandon.window_s, seed=self._seed)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop dialling, let live calls finish within ``grace_s`` (node.shutdown_grace_s), flush and close."""
        if self._stopping:
            return
        self._stopping = True
        grace_s = self.config.node.shutdown_grace_s if grace_s is None else grace_s
        loop = asyncio.get_running_loop()
        if self.core is not None:
            for name, run in self.core.campaigns.items():
                if run.state == "running":
                    await self.apply(ev.CampaignPause(name))  # the stored state stays: a restart resumes it
            deadline = loop.time() + grace_s
            while self._dialling() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.core.calls:
                log.warning("shutdown: hanging up %d live calls after %.1f s", len(self.core.calls), grace_s)
                for call in self.calls.customer_calls():
                    await self._hangup(call, "shutdown")
                hangup_deadline = loop.time() + max(2.0, self.config.sip.stop_grace_s)
                while self.core.calls and loop.time() < hangup_deadline:
                    await asyncio.sleep(0.05)
            for agent_leg in self.calls.agent_legs():
                await self._hangup(agent_leg, "shutdown")
            for agent in self.core.agents.all():  # their phones are hung up: they log in again after a restart
                if agent.state != "logged_out":
                    await self.store.agent_logout(agent.agent_id, utc_now())
        for task in (self._cap_watch, self._driver):
            if task is not None:
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(t for t in (self._cap_watch, self._driver, *self._tasks) if t is not None),
                             return_exceptions=True)
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.shutdown)  # waits for its serve loop's next poll
            self._metrics_server.server_close()
        if self.telephony is not None and self._owns_telephony:
            await self.telephony.stop()
        if self.store is not None:
            left = await self.store.close_live_cdrs(self.config.node.name, utc_now())
            if left:
                log.warning("shutdown: %d calls did not end in time; their CDRs are closed as failed", left)
            await self.store.close()
        if self.gate is not None:
            await self.gate.close()
        gc.unfreeze()  # what start() froze is garbage now (an in-process restart, tests): let the collector see it
        log.info("engine stopped: node=%s", self.config.node.name)

    def _dialling(self) -> bool:
        """Calls in progress, leads granted and not yet dialled, or lead requests still with the gate."""
        return bool(self.core.calls or any(run.queued_leads for run in self.core.campaigns.values())
                    or any(task.get_name().startswith("leads-") for task in self._tasks))

    # ------------------------------------------------------------------ campaigns

    async def start_campaign(self, name: str) -> ev.Command | None:
        """Check the caller ID with the gate (audited), then start; raises PermissionError when refused."""
        context = self.contexts[name]
        decision = await self.gate.caller_id_allowed(context, utc_now())
        if not decision.allowed:
            raise PermissionError(
                f"campaign {name!r} cannot start: caller ID {context.caller_id} refused by pack "
                f"{decision.pack} ({decision.reason.value}); register it with `dialer callerid add`"
            )
        await self.store.set_campaign_state(name, "running", utc_now())
        await self.apply(ev.CampaignStart(name))
        return None

    async def reload(self, config: DialerConfig) -> list[str]:
        """Apply a validated config: campaign settings take effect now; returns the changes that need a restart."""
        needs_restart = [section for section in ("node", "api", "metrics", "sip", "rtp", "trunks", "agents")
                         if getattr(config, section) != getattr(self.config, section)]
        contexts = {c.name: self._context(c) for c in config.campaigns}
        async with self._lock:
            for campaign in config.campaigns:
                run = self.core.campaigns.get(campaign.name)
                if run is None:
                    needs_restart.append(f"campaigns.{campaign.name} (new campaign)")
                    continue
                if run.settings.pacing != campaign.pacing:
                    self.contexts[campaign.name] = contexts[campaign.name]
                    run.policy = self._policy(campaign)
                run.settings = campaign
            self.contexts.update({n: c for n, c in contexts.items() if n in self.core.campaigns})
            self.config = config.model_copy(update={s: getattr(self.config, s) for s in
                                                    ("node", "api", "metrics", "sip", "rtp", "trunks", "agents")})
        return needs_restart

    # ------------------------------------------------------------------ the driver

    def post(self, event: ev.Event) -> None:
        """Queue an event for the core (from callbacks and tasks)."""
        self._inbox.append(event)
        self._wake.set()

    async def apply(self, event: ev.Event) -> None:
        """Feed one event now and carry out its commands (API actions use this to see errors at once)."""
        async with self._lock:
            await self._handle(event)

    async def flush(self) -> None:
        """Return once the commands of the event being handled (if any) have been carried out."""
        async with self._lock:
            pass

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._inbox:
                self._wake.clear()
                deadline = self.core.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
            event = self._inbox.popleft() if self._inbox else ev.Tick()
            try:
                async with self._lock:
                    await self._handle(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad event must not stop the node
                log.exception("engine: handling %s failed", type(event).__name__)

    async def _handle(self, event: ev.Event) -> None:
        now = asyncio.get_running_loop().time()
        commands = self.core.handle(event, now)
        self.metrics.apply(event)
        self.tally.apply(event, now)
        for command in commands:
            self.metrics.apply(command)
            self.tally.apply(command, now)
            try:
                await self._execute(command, now)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("engine: %s failed", type(command).__name__)
        self.metrics.apply_status(self.core.live_status(now))

    def _spawn(self, coroutine, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ commands

    async def _execute(self, command: ev.Command, now: float) -> None:
        wall = self.clock.wall
        match command:
            case ev.RequestLeads():
                self._spawn(serve_lead_request(self, command), f"leads-{command.request_id}")
            case ev.Originate():
                await self._originate(command, now)
            case ev.Cancel(call_id=call_id):
                await self._hangup(self.calls.customer(call_id), "ring_timeout")
            case ev.Hangup(call_id=call_id, reason=reason):
                await self._hangup(self.calls.customer(call_id), reason)
            case ev.Bridge():
                await self._bridge(command, now)
            case ev.PlayAnnouncement(call_id=call_id, announcement=announcement):
                self._spawn(self._announce(call_id, Path(announcement) if announcement else DEFAULT_ANNOUNCEMENT),
                            f"announce-{call_id}")
            case ev.CallAgent(agent_id=agent_id):
                self._spawn(self._call_agent(agent_id), f"agent-leg-{agent_id}")
            case ev.ReleaseAgent(agent_id=agent_id):
                await self._hangup(self.calls.agent_leg(agent_id), "logout")
            case ev.RecordOutcome(attempt_id=attempt_id, outcome=outcome, sip_code=sip_code) if attempt_id is not None:
                await self.gate.record_outcome(attempt_id, outcome, sip_code, wall(now))
            case ev.ScheduleRetry():
                await self._schedule_retry(command)
            case ev.RecordDisposition(call_id=call_id, agent_id=agent_id, disposition=disposition):
                await self.store.record_disposition(call_id, agent_id, disposition, wall(now))
            case ev.WriteCdr():
                await self._write_cdr(command)
            case ev.AgentStateChanged(agent_id=agent_id, new="logged_out"):
                await self.store.agent_logout(agent_id, wall(now))

    async def _originate(self, command: ev.Originate, now: float) -> None:
        await self.store.open_cdr(command.call_id, command.campaign, command.lead_id, command.trunk,
                                  self.clock.wall(now))
        try:
            call = await self.telephony.originate(command.trunk, command.number, command.caller_id, {},
                                                  command.ring_timeout_s)
        except Exception as exc:  # noqa: BLE001 - no channel, no port: the call failed before the INVITE
            log.warning("originate %s to %s failed: %s", command.call_id, mask_number(command.number), exc)
            self.post(ev.Failed(command.call_id, None, "failed"))
            return
        self.calls.add_customer(command.call_id, call)
        self._spawn(self._follow(command.call_id, call), f"call-{command.call_id}")

    async def _follow(self, call_id: str, call) -> None:
        async for event in call.events():
            core = core_event(call_id, event)
            if core is None:
                continue
            if isinstance(core, ev.Answered):
                self.calls.answered_at[call_id] = asyncio.get_running_loop().time()
            elif isinstance(core, ev.Ended):
                self.calls.hangup_by[call_id] = core.by
            self.post(core)

    async def _hangup(self, call, reason: str) -> None:
        if call is not None:
            await self.telephony.hangup(call, reason)

    async def _bridge(self, command: ev.Bridge, now: float) -> None:
        customer = self.calls.customer(command.call_id)
        agent_leg = self.calls.agent_leg(command.agent_id)
        path = Path(self.config.node.recordings_dir) / command.recording_name
        if customer is None or agent_leg is None:
            log.error("bridge %s: %s leg missing", command.call_id, "customer" if customer is None else "agent")
            if agent_leg is None:
                self.post(ev.AgentLegDown(command.agent_id))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self.telephony.bridge(customer, agent_leg, path)
        except Exception as exc:  # noqa: BLE001 - the callee hung up meanwhile: its Ended event follows
            log.warning("bridge %s failed: %s", command.call_id, exc)
            return
        self.calls.bridged.add(command.call_id)
        answered = self.calls.answered_at.get(command.call_id, now)
        await self.store.update_cdr(command.call_id, agent_id=command.agent_id, answered_at=self.clock.wall(answered),
                                    bridged_at=self.clock.wall(now), recording_path=str(path))

    async def _announce(self, call_id: str, path: Path) -> None:
        call = self.calls.customer(call_id)
        try:
            if call is not None:
                await self.telephony.play(call, path)
        except Exception as exc:  # noqa: BLE001 - the callee may have gone; the call is abandoned either way
            log.info("announcement on %s not played: %s", call_id, exc)
        finally:
            self.post(ev.AnnouncementFinished(call_id))

    async def _call_agent(self, agent_id: str) -> None:
        try:
            leg = await self.telephony.call_agent(agent_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("agent %s: cannot call the agent's phone: %s", agent_id, exc)
            self.post(ev.AgentLegDown(agent_id))
            return
        self.calls.add_agent_leg(agent_id, leg)
        up = False
        async for event in leg.events():
            kind = type(event).__name__
            if kind == "Answered":
                up = True
                self.post(ev.AgentLegUp(agent_id))
            elif kind in ("Failed", "Ended"):
                break
        self.calls.drop_agent_leg(agent_id, leg)
        log.info("agent %s: phone leg %s", agent_id, "ended" if up else "not answered")
        self.post(ev.AgentLegDown(agent_id))

    async def _schedule_retry(self, command: ev.ScheduleRetry) -> None:
        attempted = command.outcome in ATTEMPTED_OUTCOMES
        if command.closed:
            status = "done" if command.outcome in FINISHED_OUTCOMES else "closed"
            await self.store.finish_lead(command.lead_id, status, attempted=attempted, outcome=command.outcome)
        else:
            await self.store.schedule_lead(
                command.lead_id, self.clock.wall(command.at_s), attempted=attempted, outcome=command.outcome
            )

    async def _write_cdr(self, cdr: ev.WriteCdr) -> None:
        wall = self.clock.wall
        if cdr.answered_at is not None and cdr.call_id not in self.calls.bridged:
            await self.store.update_cdr(cdr.call_id, answered_at=wall(cdr.answered_at))
        await self.store.close_cdr(cdr.call_id, wall(cdr.ended_at), cdr.outcome, sip_code=cdr.sip_code,
                                   abandoned=cdr.abandoned, hangup_by=self.calls.hangup_by.get(cdr.call_id))
        self.calls.forget(cdr.call_id)

    # ------------------------------------------------------------------ abandon caps

    async def _watch_abandon_caps(self) -> None:
        active: dict[str, bool] = {}
        while True:
            for name, run in list(self.core.campaigns.items()):
                if run.state != "running":
                    continue
                try:
                    now_active = await self.gate.abandon_cap_active(self.contexts[name], utc_now())
                except Exception:  # noqa: BLE001
                    log.exception("abandon cap check of %s failed", name)
                    continue
                if active.get(name, False) != now_active:
                    active[name] = now_active
                    log.warning("campaign %s: abandon cap %s", name, "reached: pacing progressively" if now_active
                                else "clear")
                    self.post(ev.AbandonCapChanged(name, now_active))
            await asyncio.sleep(self.config.node.abandon_cap_check_interval_s)

    async def control_call(self, action: str, *args: object) -> dict:
        """Call an EngineControl action in-process (what the HTTP API does), for embedders and tests."""
        from dialer.runtime.control import RuntimeControl

        return await getattr(RuntimeControl(self), action)(*args)

    # ------------------------------------------------------------------ status

    def live_status(self) -> dict:
        now = asyncio.get_running_loop().time()
        status = self.core.live_status(now)
        status["agent_states"] = {
            a.agent_id: {"state": a.state, "call_id": a.call_id, "last_call_id": a.last_call_id}
            for a in self.core.agents.all()
        }
        status["node"] = self.config.node.name
        return status
