"""Several dialer nodes behind Kamailio on loopback: Kamailio as the agents' registrar and proxy, a SIPp carrier
shared by the nodes, the demo's agent phones registered with Kamailio, and one PostgreSQL database (this suite's own,
recreated per test) holding both nodes' storage and the compliance ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from compliance.packs import load_pack
from compliance.settings import effective_rules
from dialer.config import DialerConfig
from dialer.demo.agents import DemoAgentPhones
from dialer.demo.peer import write_voice_wav
from dialer.demo.settings import DemoAgents
from tests.conftest import require_binary
from tests.dialer.e2e.conftest import CarrierSipp
from tests.dialer.multinode.kamailio import KamailioProxy, register_agents
from tests.dialer.runtime.conftest import TOKEN

DATABASE = "dialer_multinode_test"
SCENARIOS = Path(__file__).parent / "scenarios"
AGENT_RTP_PORTS = (58000, 59999)
NODE_RTP_PORTS = {"node-a": (55000, 56499), "node-b": (56500, 57999)}
CAP_24H = 2  # by default the campaign tightens the us pack's 3 attempts per number per 24 h to 2
BUSY_RETRY_S = 0.5
CARRIER_RING_MS = 300
CARRIER_TALK_MS = 2000


class BusyOddCarrier(CarrierSipp):
    """SIPp carrier: numbers ending in an odd digit are busy, the others ring, answer and talk."""

    def __init__(self, binary: str, workdir: Path, *, ring_ms: int, talk_ms: int, timeout_s: int) -> None:
        super().__init__(binary, workdir, ring_ms=ring_ms, talk_ms=talk_ms, timeout_s=timeout_s)
        self.scenario = SCENARIOS / "uas_busy_odd.xml"


@pytest.fixture
async def kamailio(tmp_path):
    proxy = KamailioProxy(require_binary("kamailio"), tmp_path)
    try:
        yield await proxy.start()
    finally:
        await proxy.stop()


@pytest.fixture
async def busy_odd_carrier(request, tmp_path):
    """Ring and talk times (ms) default to CARRIER_RING_MS and CARRIER_TALK_MS; a test may set them through
    indirect parametrization: ``@pytest.mark.parametrize("busy_odd_carrier", [{"ring_ms": ...}], indirect=True)``."""
    timing = {"ring_ms": CARRIER_RING_MS, "talk_ms": CARRIER_TALK_MS, **getattr(request, "param", {})}
    carrier = BusyOddCarrier(require_binary("sipp"), tmp_path, timeout_s=100, **timing)
    try:
        yield await carrier.start()
    finally:
        await carrier.stop()


@pytest.fixture
async def registered_phones(tmp_path, kamailio):
    """Four agent phones on one endpoint, each registered with Kamailio under its agent id."""
    voice = write_voice_wav(tmp_path / "agent-voice.wav", 220.0, 1)
    phones = await DemoAgentPhones.open(host="127.0.0.1", rtp_ports=AGENT_RTP_PORTS, audio_wav=voice,
                                        settings=DemoAgents(), count=4, seed=1)
    try:
        await register_agents(phones, kamailio.address)
        yield phones
    finally:
        await phones.close()


@pytest.fixture
async def shared_dsn(postgres_dsn: str) -> str:
    """This suite's own database, recreated empty for each test; both nodes store and reserve in it."""
    server = await asyncpg.connect(postgres_dsn)
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await server.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await server.close()
    return postgres_dsn.rsplit("/", 1)[0] + f"/{DATABASE}"


def node_config(tmp_path: Path, name: str, dsn: str, carrier_port: int, proxy: KamailioProxy,
                agent_ids: list[str], *, campaigns: tuple[str, ...] = ("c1",), cap_24h: int = CAP_24H) -> dict:
    """One node's config: the shared DSN, its own agents reached through Kamailio, the same campaigns as the others."""
    port_min, port_max = NODE_RTP_PORTS[name]
    return DialerConfig.model_validate({
        "node": {"name": name, "database": dsn, "recordings_dir": str(tmp_path / name / "recordings"),
                 "registrations_file": str(tmp_path / name / "registrations.db"),
                 "shutdown_grace_s": 5},
        "api": {"port": 0, "token": TOKEN},
        "metrics": {"port": 0},
        "sip": {"port": 0, "transports": ["udp"]},
        "rtp": {"port_min": port_min, "port_max": port_max},
        "trunks": [{"name": "sipp", "host": "127.0.0.1", "port": carrier_port, "max_channels": 10, "max_cps": 20}],
        "agents": [{"id": agent_id, "uri": proxy.uri(agent_id)} for agent_id in agent_ids],
        "campaigns": [{"name": campaign, "caller_id": "+12025550100", "trunks": ["sipp"],
                       "ring_timeout_s": 10, "connect_limit_s": 2, "wrap_up_s": 0.3,
                       "compliance": {"rule_pack": "us", "caps_per_number": {"rolling_24h": cap_24h}},
                       "pacing": {"mode": "progressive", "interval_s": 0.2},
                       "retry": {"busy": {"retry_after_s": BUSY_RETRY_S}}} for campaign in campaigns],
    }).model_dump(mode="json", by_alias=True)


def cap_24h(config: dict) -> int:
    """The tightest per-number 24 h cap the campaign's effective rules enforce (pack tightened by the campaign)."""
    campaign = DialerConfig.model_validate(config).campaigns[0]
    rules = effective_rules(load_pack(campaign.compliance.rule_pack), campaign.compliance)
    return min(c.rolling_24h for c in (rules.caps_per_number, rules.caps_per_campaign) if c.rolling_24h is not None)


async def rows(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def campaign_settled(dsn: str) -> bool:
    """Every lead is finished, or waits a day or more (the frequency cap refused it)."""
    pending = await rows(dsn, "SELECT COUNT(*) AS n FROM leads WHERE status IN ('new', 'dialing')"
                              " OR (status = 'scheduled' AND next_attempt_at < $1)",
                         datetime.now(timezone.utc) + timedelta(hours=1))
    return pending[0]["n"] == 0

