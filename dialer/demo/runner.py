"""`dialer demo`: the switch, a simulated carrier, simulated agents and a lead list on loopback, for a few minutes."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from compliance.rules import DncEntry
from dialer.config import DialerConfig
from dialer.core.events import FAILURE_OUTCOMES
from dialer.demo.agents import DemoAgentPhones
from dialer.demo.carrier import DemoCarrier
from dialer.demo.leads import demo_lead_csv
from dialer.demo.peer import write_voice_wav
from dialer.leads_csv import import_leads
from dialer.runtime.engine import Engine, utc_now
from dialer.storage import open_store

log = logging.getLogger("dialer.demo")

OUTCOME_KEYS = ("answered", *FAILURE_OUTCOMES)
SUMMARY_KEYS = ("dials", "answered", "abandoned", "abandon_rate", "outcomes", "gate_refusals", "occupancy",
                "talk_minutes_per_agent_hour")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    config: DialerConfig
    workdir: Path
    minutes: float
    agents: int
    carrier: tuple[str, int] | None  # an external SIP peer instead of the simulated carrier
    seed: int
    progress: TextIO | None  # where the one-line-per-second progress goes (None: nowhere)


def demo_config(base: DialerConfig, workdir: Path, carrier: tuple[str, int], agents: DemoAgentPhones, *,
                external_carrier: bool) -> DialerConfig:
    """The demo's config file with the database and recordings under workdir and the loopback peers' addresses.
    An external carrier gets no OPTIONS health checks: SIPp's callee scenarios do not answer them."""
    data = base.model_dump()
    data["node"].update(database=f"sqlite:///{workdir / 'dialer.db'}", recordings_dir=str(workdir / "recordings"),
                        registrations_file=str(workdir / "registrations.db"))
    data["trunks"][0].update(host=carrier[0], port=carrier[1])
    if external_carrier:
        data["trunks"][0]["options_enabled"] = False
    data["agents"] = [{"id": agent_id, "uri": agents.uri(agent_id)} for agent_id in agents.agent_ids]
    return DialerConfig.model_validate(data)


async def seed_data(engine: Engine, campaign: str, csv_text: str) -> tuple[int, list[str]]:
    """Import the lead list, register the campaign's caller ID and put one lead on the do-not-call list."""
    summary = await import_leads(engine.store, campaign, io.StringIO(csv_text), utc_now())
    context = engine.contexts[campaign]
    await engine.gate.ledger.register_caller_id(context.caller_id, True, utc_now())
    [first] = await engine.store.list_leads(campaign, limit=1)
    await engine.gate.ledger.add_dnc([DncEntry(first.e164, False, "internal", None)], utc_now())
    return summary.imported, [str(error) for error in summary.errors]


def progress_line(engine: Engine, elapsed_s: float, campaign: str) -> str:
    status = engine.live_status()
    agents = status["agents"]
    figures = status["campaigns"][campaign]
    refused = sum(engine.tally.gate_refusals.values())
    return (f"{elapsed_s:5.0f}s  agents ready {agents['ready']} talking {agents['talking']} wrap-up {agents['wrap_up']}"
            f" paused {agents['paused']} | in flight {figures['calls_in_flight']:2d} waiting "
            f"{figures['answered_waiting']} | dials {engine.tally.originated:4d} answered {figures['answered']:3d} "
            f"abandoned {figures['abandoned']} ({100 * figures['abandon_rate']:.1f} %) | gate refused {refused}")


async def summarise(database: str, engine: Engine, now: float) -> dict:
    store = await open_store(database, node="demo-summary")
    try:
        cdrs = [cdr async for cdr in store.export_cdrs()]
    finally:
        await store.close()
    outcomes = Counter({key: 0 for key in OUTCOME_KEYS})
    for cdr in cdrs:
        outcome = "answered" if cdr.outcome == "abandoned" else (cdr.outcome or "failed")
        outcomes[outcome if outcome in outcomes else "failed"] += 1
    answered = sum(1 for cdr in cdrs if cdr.answered_at is not None)
    abandoned = sum(1 for cdr in cdrs if cdr.abandoned)
    occupancy, talking_s, working_s = engine.tally.occupancy(now)
    return {
        "dials": len(cdrs),
        "answered": answered,
        "abandoned": abandoned,
        "abandon_rate": round(abandoned / answered, 4) if answered else 0.0,
        "outcomes": dict(outcomes),
        "gate_refusals": dict(sorted(engine.tally.gate_refusals.items())),
        "occupancy": round(occupancy, 4),
        "talk_minutes_per_agent_hour": round((talking_s / 60) / (working_s / 3600), 2) if working_s else 0.0,
    }


async def run_demo(options: DemoOptions) -> tuple[dict, dict]:
    """Run the demo; returns (summary with SUMMARY_KEYS, details for the text report)."""
    shutil.rmtree(options.workdir, ignore_errors=True)
    options.workdir.mkdir(parents=True)
    settings = options.config.demo
    host = options.config.sip.bind_host
    carrier_voice = write_voice_wav(options.workdir / "callee-voice.wav", 170.0, options.seed)
    agent_voice = write_voice_wav(options.workdir / "agent-voice.wav", 220.0, options.seed + 1)
    span = (settings.rtp_port_max - settings.rtp_port_min) // 2
    carrier = None
    if options.carrier is None:
        carrier = await DemoCarrier.open(host=host, rtp_ports=(settings.rtp_port_min, settings.rtp_port_min + span - 1),
                                         audio_wav=carrier_voice, mix=settings.carrier, seed=options.seed)
    phones = await DemoAgentPhones.open(host=host, rtp_ports=(settings.rtp_port_min + span, settings.rtp_port_max),
                                        audio_wav=agent_voice, settings=settings.agents, count=options.agents,
                                        seed=options.seed)
    carrier_address = options.carrier or (host, carrier.port)
    config = demo_config(options.config, options.workdir, carrier_address, phones,
                         external_carrier=options.carrier is not None)
    campaign = config.campaigns[0].name
    engine = Engine(config, seed=options.seed)
    work: asyncio.Task | None = None
    try:
        await engine.start()
        imported, rejected = await seed_data(engine, campaign, demo_lead_csv(settings.leads_per_region, options.seed))
        details = {"leads": imported, "rejected_rows": rejected, "carrier": f"{carrier_address[0]}:{carrier_address[1]}",
                   "simulated_carrier": carrier is not None, "api": f"http://{config.api.bind_host}:{engine.api_port}",
                   "metrics": f"http://{config.metrics.bind_host}:{engine.metrics_port}/metrics",
                   "workdir": str(options.workdir)}
        if options.progress is not None:
            print(intro(details, options), file=options.progress, flush=True)
        work = asyncio.create_task(phones.work(details["api"], config.api.token))
        async with aiohttp.ClientSession(details["api"], headers={"Authorization": f"Bearer {config.api.token}"}) as http:
            for agent_id in phones.agent_ids:
                await _post(http, f"/v1/agents/{agent_id}/login")
            await _post(http, f"/v1/campaigns/{campaign}/start")
            loop = asyncio.get_running_loop()
            started = loop.time()
            dial_until = started + max(0.0, options.minutes * 60 - settings.stop_grace_s)
            while loop.time() < dial_until:
                await asyncio.sleep(min(1.0, max(0.0, dial_until - loop.time())))
                if options.progress is not None:
                    print(progress_line(engine, loop.time() - started, campaign), file=options.progress, flush=True)
            await _post(http, f"/v1/campaigns/{campaign}/pause")
        grace_until = loop.time() + settings.stop_grace_s
        while engine.core.calls and loop.time() < grace_until:
            await asyncio.sleep(0.1)
        ended_at = loop.time()
        work.cancel()
        await engine.stop(grace_s=0)
        summary = await summarise(config.node.database, engine, ended_at)
        details["dispositions"] = phones.dispositions_sent
        if carrier is not None:
            details["carrier_decisions"] = dict(carrier.given)
        return summary, details
    finally:
        if work is not None:
            work.cancel()
        await engine.stop(grace_s=0)
        await phones.close()
        if carrier is not None:
            await carrier.close()


async def _post(http: aiohttp.ClientSession, path: str) -> dict:
    async with http.post(path) as response:
        body = await response.json()
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: {response.status} {body.get('error')}")
        return body


def intro(details: dict, options: DemoOptions) -> str:
    carrier = "simulated carrier" if details["simulated_carrier"] else "external carrier"
    lines = [f"dialer demo: {options.minutes:g} min, {options.agents} agents, {details['leads']} leads in 8 regions "
             f"(us rule pack: callee local time 08:00-21:00), {carrier} at {details['carrier']}",
             f"  API {details['api']}  metrics {details['metrics']}  records under {details['workdir']}/"]
    lines += [f"  lead list: {problem} (row skipped)" for problem in details["rejected_rows"]]
    return "\n".join(lines)


def summary_text(summary: dict, details: dict) -> str:
    outcomes = ", ".join(f"{key} {value}" for key, value in summary["outcomes"].items())
    refusals = ", ".join(f"{key} {value}" for key, value in summary["gate_refusals"].items()) or "none"
    rows = [
        ("dials", summary["dials"]),
        ("outcomes", outcomes),
        ("answered", summary["answered"]),
        ("abandoned", f"{summary['abandoned']} ({100 * summary['abandon_rate']:.1f} % of answered)"),
        ("agent occupancy", f"{100 * summary['occupancy']:.1f} %"),
        ("talk minutes per agent-hour", summary["talk_minutes_per_agent_hour"]),
        ("gate refusals", refusals),
        ("dispositions entered", details.get("dispositions", 0)),
        ("CDRs and recordings", f"{details['workdir']}/dialer.db, {details['workdir']}/recordings/"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(["", "Summary"] + [f"  {name.ljust(width)}  {value}" for name, value in rows])


def progress_stream(json_output: bool) -> TextIO | None:
    """Progress on stdout in text mode; with --json, on stderr when that is a terminal (stdout stays one object)."""
    if not json_output:
        return sys.stdout
    return sys.stderr if sys.stderr.isatty() else None
