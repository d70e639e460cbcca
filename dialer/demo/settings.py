"""Settings of `dialer demo`'s simulated carrier and agents (the `demo:` section of a config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CarrierMix(Frozen):
    """How the simulated carrier treats each INVITE. The shares are drawn per call; the rest ring unanswered."""

    answer_rate: float = Field(0.55, ge=0, le=1, description="share of calls answered, ratio; default 0.55")
    busy_rate: float = Field(0.12, ge=0, le=1, description="share refused with 486 Busy Here, ratio; default 0.12")
    invalid_rate: float = Field(0.05, ge=0, le=1, description="share refused with 404 Not Found, ratio; default 0.05")
    congestion_rate: float = Field(0.03, ge=0, le=1, description="share refused with 503, ratio; default 0.03")
    no_answer_480_share: float = Field(
        0.5, ge=0, le=1,
        description="of the unanswered calls, the share ended by a 480 after ringing (the others ring until our "
        "CANCEL), ratio; default 0.5",
    )
    ring_min_s: float = Field(1.0, ge=0, description="shortest ring before an answer or a failure, seconds; default 1")
    ring_max_s: float = Field(8.0, ge=0, description="longest ring before an answer or a failure, seconds; default 8")
    no_answer_ring_s: float = Field(12.0, gt=0, description="ring before a 480 No Answer, seconds; default 12")
    talk_min_s: float = Field(10.0, gt=0, description="shortest conversation after the answer, seconds; default 10")
    talk_max_s: float = Field(40.0, gt=0, description="longest conversation after the answer, seconds; default 40")

    @model_validator(mode="after")
    def _consistent(self) -> "CarrierMix":
        if self.answer_rate + self.busy_rate + self.invalid_rate + self.congestion_rate > 1 + 1e-9:
            raise ValueError("answer_rate + busy_rate + invalid_rate + congestion_rate must not exceed 1")
        if self.ring_min_s > self.ring_max_s or self.talk_min_s > self.talk_max_s:
            raise ValueError("each *_min_s must not exceed its *_max_s")
        return self


class DemoAgents(Frozen):
    count: int = Field(5, ge=1, le=200, description="simulated agents logged in; default 5 (--agents)")
    disposition_min_s: float = Field(1.0, ge=0, description="shortest time to enter a disposition, seconds; default 1")
    disposition_max_s: float = Field(4.0, ge=0, description="longest time to enter a disposition, seconds; default 4")
    status_poll_s: float = Field(0.5, gt=0, description="how often an agent polls the API for its call, seconds")


class DemoSettings(Frozen):
    carrier: CarrierMix = CarrierMix()
    agents: DemoAgents = DemoAgents()
    leads_per_region: int = Field(
        60, ge=1, le=500, description="demo leads generated per number region (8 regions); default 60"
    )
    rtp_port_min: int = Field(
        24000, ge=1024, le=65000, description="first RTP port of the simulated carrier and agents (the switch uses "
        "rtp.port_min..rtp.port_max); default 24000"
    )
    rtp_port_max: int = Field(27999, ge=1025, le=65535, description="last RTP port of the simulated peers")
    stop_grace_s: float = Field(
        3.0, ge=0, description="at the end of the demo, how long live calls may finish before they are hung up, seconds"
    )
