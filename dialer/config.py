"""The switch's configuration: one YAML file composed of each package's validated sections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compliance.packs import load_pack
from compliance.settings import CampaignCompliance, campaign_timing_problems, effective_rules
from dialer.config_loader import ConfigError, load_model
from dialer.demo.settings import DemoSettings
from dialer.storage.models import RECYCLABLE_OUTCOMES, recycle_problem
from pacing.settings import PacingSettings
from sip.settings import RtpSettings, SipSettings, TrunkSettings

__all__ = ["ConfigError", "DialerConfig", "load_config"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeSettings(Frozen):
    name: str = Field("node1", min_length=1, description="node name, shown in CDRs and logs")
    database: str = Field(
        "sqlite:///var/dialer.db",
        description="sqlite:///PATH (embedded default, relative to the working directory) or postgresql://DSN",
    )
    database_busy_timeout_s: float = Field(
        5.0, gt=0, description="SQLite: how long a writer waits for another's lock before failing, seconds"
    )
    database_pool_max_size: int = Field(10, ge=1, description="PostgreSQL: connections this node keeps at most")
    database_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite: NORMAL keeps every commit through kill -9 and OS restarts; FULL also through power "
        "loss, at one fsync per commit",
    )
    recordings_dir: Path = Field(Path("var/recordings"), description="where call recordings are written")
    registrations_file: Path | None = Field(
        Path("var/registrations.db"),
        description="SQLite file keeping the registrar's bindings across restarts (agents' softphones stay reachable "
        "without registering again); null keeps them in memory only",
    )
    shutdown_grace_s: float = Field(30.0, ge=0, description="on SIGTERM, how long live calls may finish, seconds")
    abandon_cap_check_interval_s: float = Field(
        5.0, gt=0, description="how often running campaigns ask the ledger whether their abandon cap is reached, seconds"
    )


class ApiSettings(Frozen):
    bind_host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="HTTP API port; 0 picks a free port")
    token: str = Field(..., min_length=16, description="bearer token every API request must carry")


class MetricsSettings(Frozen):
    bind_host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535, description="Prometheus exposition port; 0 picks a free port")


class AgentSettings(Frozen):
    id: str = Field(..., min_length=1, description="agent id used by the API")
    uri: str | None = Field(None, description="SIP URI the engine calls at login; omit to call the registered contact")
    username: str | None = Field(None, description="registrar username for the agent's softphone")
    password: str | None = Field(None, description="registrar digest password")


class RetryRule(Frozen):
    retry_after_s: float | None = Field(..., ge=0, description="wait before the next attempt, seconds; null: never retry")


class RecycleSettings(Frozen):
    outcomes: tuple[str, ...] = Field(
        ..., min_length=1, description=f"last outcomes whose closed leads are recycled, of {RECYCLABLE_OUTCOMES}"
    )
    recycle_after_s: float = Field(
        3600.0, ge=0, description="a recycled lead is due this long after the campaign ran out of due leads, seconds"
    )
    max_passes: int = Field(1, ge=1, description="automatic recycles per lead (a manual `leads recycle` is not capped)")

    @field_validator("outcomes")
    @classmethod
    def _recyclable(cls, outcomes: tuple[str, ...]) -> tuple[str, ...]:
        problem = recycle_problem(outcomes)
        if problem:
            raise ValueError(problem)
        return outcomes


class RetrySettings(Frozen):
    busy: RetryRule = RetryRule(retry_after_s=600)
    no_answer: RetryRule = RetryRule(retry_after_s=7200)
    congestion: RetryRule = RetryRule(retry_after_s=300)
    failed: RetryRule = RetryRule(retry_after_s=1800)
    abandoned: RetryRule = RetryRule(retry_after_s=86400)
    max_attempts: int = Field(5, ge=1, description="attempts per lead before it is closed")
    recycle: RecycleSettings | None = Field(
        None, description="reopen closed leads for another pass when the campaign runs out of due leads; null: off"
    )


class CampaignSettings(Frozen):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    caller_id: str = Field(..., description="E.164 number presented as caller ID; must be registered")
    trunks: tuple[str, ...] = Field(..., min_length=1, description="trunk names, tried in order")
    agents: tuple[str, ...] = Field((), description="agent ids working this campaign; empty: all agents")
    priority: int = Field(0, description="higher dials first when campaigns share agents")
    ring_timeout_s: float = Field(25.0, gt=0, description="CANCEL an unanswered call after this long, seconds")
    connect_limit_s: float = Field(2.0, gt=0, description="answered call must reach an agent within this, seconds")
    wrap_up_s: float = Field(10.0, ge=0, description="agent wrap-up after each call, seconds")
    announcement: Path | None = Field(None, description="WAV played to an answered call no agent could take")
    compliance: CampaignCompliance = CampaignCompliance()
    pacing: PacingSettings = PacingSettings()
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _timing_meets_rule_pack(self) -> "CampaignSettings":
        rules = effective_rules(load_pack(self.compliance.rule_pack), self.compliance)
        problems = campaign_timing_problems(rules, ring_timeout_s=self.ring_timeout_s, connect_limit_s=self.connect_limit_s)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DialerConfig(Frozen):
    node: NodeSettings = NodeSettings()
    api: ApiSettings
    metrics: MetricsSettings = MetricsSettings()
    sip: SipSettings = SipSettings()
    rtp: RtpSettings = RtpSettings()
    trunks: tuple[TrunkSettings, ...] = ()
    agents: tuple[AgentSettings, ...] = ()
    campaigns: tuple[CampaignSettings, ...] = ()
    demo: DemoSettings = Field(DemoSettings(), description="`dialer demo` only: the simulated carrier and agents")

    @model_validator(mode="after")
    def _references_resolve(self) -> "DialerConfig":
        trunk_names = {t.name for t in self.trunks}
        agent_ids = {a.id for a in self.agents}
        problems = []
        for index, campaign in enumerate(self.campaigns):
            for trunk in campaign.trunks:
                if trunk not in trunk_names:
                    problems.append(f"campaigns.{index}.trunks: unknown trunk {trunk!r}")
            for agent in campaign.agents:
                if agent not in agent_ids:
                    problems.append(f"campaigns.{index}.agents: unknown agent {agent!r}")
        if len({c.name for c in self.campaigns}) != len(self.campaigns):
            problems.append("campaigns: campaign names must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_config(path: Path | str) -> DialerConfig:
    return load_model(path, DialerConfig)
