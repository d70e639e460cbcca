"""End-to-end set-up on loopback: SIPp as the carrier, the demo's simulated agent phones, the engine on the real
switch and a temporary SQLite database. Every peer is started per test on free ports and always stopped."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from dialer.config import DialerConfig
from dialer.demo.agents import DemoAgentPhones
from dialer.demo.peer import write_voice_wav
from dialer.demo.settings import DemoAgents
from tests.conftest import require_binary
from tests.dialer.runtime.conftest import TOKEN
from tests.sip.conftest import SippPeer

SCENARIOS = Path(__file__).parent / "scenarios"


class CarrierSipp(SippPeer):
    """SIPp running tests/dialer/e2e/scenarios/uas_carrier.xml, echoing RTP, logging every message it receives."""

    def __init__(self, binary: str, workdir: Path, *, ring_ms: int, talk_ms: int, timeout_s: int = 20) -> None:
        self.message_log = workdir / "sipp-messages.log"
        super().__init__(binary, "uas_carrier.xml", workdir, keys={"ring_ms": str(ring_ms), "talk_ms": str(talk_ms)},
                         calls=100000, extra=("-rtp_echo", "-trace_msg", "-message_file", str(self.message_log),
                                              "-timeout", f"{timeout_s}s"))
        self.scenario = SCENARIOS / "uas_carrier.xml"

    def invites(self) -> list[str]:
        """Request-URIs of the INVITEs SIPp received (its message log, written as each message arrives)."""
        text = self.message_log.read_text(errors="replace") if self.message_log.exists() else ""
        return re.findall(r"^INVITE (\S+) SIP/2\.0", text, flags=re.MULTILINE)


@pytest.fixture
async def sipp_carrier(tmp_path):
    binary = require_binary("sipp")
    peers: list[CarrierSipp] = []

    async def start(*, ring_ms: int = 300, talk_ms: int = 2000, timeout_s: int = 20) -> CarrierSipp:
        peer = CarrierSipp(binary, tmp_path, ring_ms=ring_ms, talk_ms=talk_ms, timeout_s=timeout_s)
        peers.append(peer)
        return await peer.start()

    yield start
    for peer in peers:
        await peer.stop()


@pytest.fixture
async def agent_phones(tmp_path):
    opened: list[DemoAgentPhones] = []

    async def start(count: int) -> DemoAgentPhones:
        voice = write_voice_wav(tmp_path / "agent-voice.wav", 220.0, 1)
        phones = await DemoAgentPhones.open(host="127.0.0.1", rtp_ports=(24000, 27999), audio_wav=voice,
                                            settings=DemoAgents(), count=count, seed=1)
        opened.append(phones)
        return phones

    yield start
    for phones in opened:
        await phones.close()


def e2e_config(tmp_path: Path, carrier_port: int, phones: DemoAgentPhones, **campaign: object) -> DialerConfig:
    return DialerConfig.model_validate({
        "node": {"name": "e2e", "database": f"sqlite:///{tmp_path / 'dialer.db'}",
                 "recordings_dir": str(tmp_path / "recordings"),
                 "registrations_file": str(tmp_path / "registrations.db"), "shutdown_grace_s": 5},
        "api": {"port": 0, "token": TOKEN},
        "metrics": {"port": 0},
        "sip": {"port": 0, "transports": ["udp"]},
        "rtp": {"port_min": 28000, "port_max": 29999},
        "trunks": [{"name": "sipp", "host": "127.0.0.1", "port": carrier_port, "max_channels": 10, "max_cps": 20,
                    "options_enabled": False}],  # SIPp's callee scenario does not answer OPTIONS
        "agents": [{"id": agent_id, "uri": phones.uri(agent_id)} for agent_id in phones.agent_ids],
        "campaigns": [{"name": "c1", "caller_id": "+12025550100", "trunks": ["sipp"], "ring_timeout_s": 10,
                       "connect_limit_s": 2, "wrap_up_s": 0.3, "compliance": {"rule_pack": "us"},
                       "pacing": {"mode": "progressive", "interval_s": 0.2}, **campaign}],
    })


def ledger_outcomes(database_path: Path) -> dict[str, list[str | None]]:
    """number -> outcomes of its attempts in the compliance ledger."""
    with sqlite3.connect(database_path) as db:
        rows = db.execute("SELECT number, outcome FROM attempts ORDER BY id").fetchall()
    outcomes: dict[str, list[str | None]] = {}
    for number, outcome in rows:
        outcomes.setdefault(number, []).append(outcome)
    return outcomes
