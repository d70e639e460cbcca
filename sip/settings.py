"""Settings of the SIP and media stack (validated config sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SipSettings(Frozen):
    bind_host: str = Field("127.0.0.1", description="address the SIP sockets bind to (IPv4 or IPv6)")
    port: int = Field(5060, ge=0, le=65535, description="SIP port for UDP and TCP; 0 picks a free port")
    transports: tuple[Literal["udp", "tcp", "tls"], ...] = Field(("udp", "tcp"), description="listening transports")
    t1_ms: int = Field(500, gt=0, description="RFC 3261 T1, round-trip estimate, milliseconds")
    t2_ms: int = Field(4000, gt=0, description="RFC 3261 T2, max non-INVITE retransmit interval, milliseconds")
    t4_ms: int = Field(5000, gt=0, description="RFC 3261 T4, max time a message stays in the network, milliseconds")
    user_agent: str = Field("dialer", description="User-Agent and Server header value")


class RtpSettings(Frozen):
    bind_host: str = Field("127.0.0.1", description="address RTP sockets bind to")
    port_min: int = Field(20000, ge=1024, le=65534, description="lowest RTP port (even)")
    port_max: int = Field(29999, ge=1025, le=65535, description="highest RTP port")
    inactivity_timeout_s: float = Field(30.0, gt=0, description="hang up a bridged call after this long without RTP, seconds")


class TrunkSettings(Frozen):
    name: str = Field(..., min_length=1, description="trunk name, used in metrics labels")
    host: str = Field(..., description="carrier address or outbound proxy host")
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: str | None = Field(None, description="digest username when the carrier challenges")
    password: str | None = Field(None, description="digest password")
    register_enabled: bool = Field(False, alias="register", description="register to the trunk and refresh before expiry")
    max_channels: int = Field(30, ge=1, description="concurrent calls allowed on the trunk")
    max_cps: float = Field(10.0, gt=0, description="new calls per second allowed on the trunk")
    options_interval_s: float = Field(30.0, gt=0, description="OPTIONS health-check interval, seconds")
