"""Settings of the SIP and media stack (validated config sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    extra_bind_hosts: tuple[str, ...] = Field(
        (), description="more addresses to listen on with the same port and transports (e.g. '::1' beside 127.0.0.1)"
    )
    realm: str = Field("dialer", min_length=1, description="digest realm agents' softphones authenticate in")
    nonce_ttl_s: float = Field(300.0, gt=0, description="how long a registrar nonce stays valid, seconds")
    register_min_expires_s: int = Field(60, ge=1, description="shortest registration accepted (423 below), seconds")
    register_max_expires_s: int = Field(3600, ge=1, description="longest registration granted, seconds")
    register_default_expires_s: int = Field(600, ge=1, description="registration granted when none is asked, seconds")
    agents_behind_nat: bool = Field(
        False, description="call agents at the address their REGISTER came from, not their Contact (NAT)"
    )
    digest_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = Field(
        ("MD5",), min_length=1,
        description="digest algorithms the registrar offers, preferred first; adding SHA-256 locks out phones "
        "that refuse any challenge they cannot answer (baresip 1.0 does)",
    )
    agent_ring_timeout_s: float = Field(30.0, gt=0, description="how long an agent's phone may ring, seconds")
    tls_verify: bool = Field(True, description="verify trunk TLS certificates and host names")
    tls_ca_file: str | None = Field(None, description="CA bundle for trunk TLS; default: the system store")
    udp_buffer_bytes: int = Field(
        4 * 1024 * 1024, ge=65536, description="receive/send buffer of SIP UDP sockets, bytes (capped by the kernel)"
    )
    stop_grace_s: float = Field(2.0, ge=0, description="on stop, time left for BYE/CANCEL to be answered, seconds")


class RtpSettings(Frozen):
    bind_host: str = Field("127.0.0.1", description="address RTP sockets bind to")
    port_min: int = Field(20000, ge=1024, le=65534, description="lowest RTP port (even)")
    port_max: int = Field(29999, ge=1025, le=65535, description="highest RTP port")
    inactivity_timeout_s: float = Field(30.0, gt=0, description="hang up a bridged call after this long without RTP, seconds")
    advertised_host: str | None = Field(
        None, description="address put in SDP c= lines (public address behind NAT); default: bind_host"
    )
    codecs: tuple[Literal["PCMU", "PCMA"], ...] = Field(
        ("PCMU", "PCMA"), min_length=1, description="audio codecs offered, in order of preference"
    )
    telephone_event_pt: int = Field(101, ge=96, le=127, description="dynamic payload type offered for RFC 4733 DTMF")
    ptime_ms: int = Field(20, ge=10, le=60, description="packetisation time of audio we send, milliseconds")
    symmetric_rtp: bool = Field(
        True, description="send to the source address of the first RTP packet received (callers behind NAT)"
    )
    inactivity_check_interval_s: float = Field(1.0, gt=0, description="how often RTP inactivity is checked, seconds")
    rtcp_interval_s: float = Field(
        5.0, ge=0, description="mean interval between the RTCP reports each leg sends (randomised 0.5-1.5 times, RFC "
        "3550 6.3), seconds; 0 sends none"
    )
    recording_flush_interval_s: float = Field(
        0.5, gt=0, le=1.0, description="recordings are written and their WAV header updated this often, seconds"
    )
    recording_jitter_s: float = Field(
        0.2, ge=0, le=0.5, description="how late an RTP packet may arrive and still be placed in a recording, seconds"
    )
    dtmf_duration_ms: int = Field(100, ge=40, le=5000, description="default duration of DTMF digits we send, milliseconds")
    relay_delay_buckets_s: tuple[float, ...] = Field(
        (0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05),
        description="upper bounds of the per-leg relay processing delay histogram, seconds",
    )

    @model_validator(mode="after")
    def _port_range_holds_a_pair(self) -> "RtpSettings":
        if self.port_max - self.port_min < 1:
            raise ValueError("port_max must be at least port_min + 1 (RTP on an even port, RTCP on the next)")
        if self.bind_host in ("0.0.0.0", "::") and self.advertised_host is None:
            raise ValueError(f"bind_host {self.bind_host} is a wildcard: set advertised_host to the address peers "
                             "should send RTP to (it goes into SDP c= lines)")
        return self


class TrunkSettings(Frozen):
    name: str = Field(..., min_length=1, description="trunk name, used in metrics labels")
    host: str = Field(..., description="carrier address or outbound proxy host")
    port: int = Field(5060, ge=1, le=65535, description="carrier SIP port")
    transport: Literal["udp", "tcp", "tls"] = Field("udp", description="transport to the carrier; tls uses the standard ssl module")
    username: str | None = Field(None, description="digest username when the carrier challenges")
    password: str | None = Field(None, description="digest password")
    register_enabled: bool = Field(False, alias="register", description="register to the trunk and refresh before expiry")
    max_channels: int = Field(30, ge=1, description="concurrent calls allowed on the trunk")
    max_cps: float = Field(10.0, gt=0, description="new calls per second allowed on the trunk")
    options_interval_s: float = Field(30.0, gt=0, description="OPTIONS health-check interval, seconds")
    options_enabled: bool = Field(True, description="send OPTIONS health checks; a trunk that stops answering is skipped")
    domain: str | None = Field(None, description="host part of the Request-URI and To; default: host")
    outbound_proxy: str | None = Field(
        None, description="'host[:port]' to send every request to while the Request-URI keeps the domain"
    )
    from_domain: str | None = Field(None, description="host part of From and P-Asserted-Identity; default: domain")
    user_phone: bool = Field(True, description="add ;user=phone to telephone-number URIs")
    p_asserted_identity: bool = Field(True, description="send P-Asserted-Identity with the campaign caller ID")
    privacy: Literal["none", "id", "user", "header"] | None = Field(
        None, description="Privacy header value (RFC 3323/3325); null: no header"
    )
    anonymous_from: bool = Field(False, description="present From as anonymous (caller ID only in P-Asserted-Identity)")
    failover_timeout_s: float = Field(
        4.0, gt=0, description="no response at all to an INVITE within this: try the next trunk, seconds"
    )
    register_expires_s: int = Field(600, ge=60, description="registration lifetime asked of the trunk, seconds")
    register_retry_s: float = Field(30.0, gt=0, description="wait before retrying a failed trunk registration, seconds")
