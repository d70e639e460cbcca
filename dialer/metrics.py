"""Every Prometheus metric of the product, defined once, in a registry of its own (tests make fresh ones).

``DialerMetrics.apply(item)`` takes the engine core's events and commands as they pass through the
runtime; ``apply_status(core.live_status(now))`` refreshes the gauges. Labels are small closed sets
(campaign and trunk names from config, outcome, reason, SIP class, agent state), never numbers or ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dialer.core import events as ev
from dialer.core.agents import AGENT_STATES

if TYPE_CHECKING:
    from sip.media.engine import MediaQuality

OUTCOMES = ("answered", "abandoned", "busy", "no_answer", "invalid", "rejected", "congestion", "failed")
SIP_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx")
GATE_REASON_PATTERN = re.compile(r"^[a-z][a-z_]{0,39}$")  # the gate's reason codes; anything else is "other"

ANSWER_TO_BRIDGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
AGENT_WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0)
RTP_JITTER_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)


def sip_class(code: int) -> str:
    if not 100 <= code <= 699:
        raise ValueError(f"not a SIP status code: {code}")
    return f"{code // 100}xx"


class DialerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.calls = Counter("dialer_calls", "Calls by final outcome.", ["campaign", "outcome"], registry=r)
        self.abandoned_calls = Counter(
            "dialer_abandoned_calls", "Answered calls no agent took within the connect limit.", ["campaign"],
            registry=r,
        )
        self.abandon_rate = Gauge(
            "dialer_abandon_rate", "Abandoned over answered calls of the campaign since the engine started (0..1).",
            ["campaign"], registry=r,
        )
        self.agents = Gauge("dialer_agents", "Agents by state.", ["state"], registry=r)
        self.calls_in_flight = Gauge(
            "dialer_calls_in_flight", "Calls dialled and not yet answered or failed.", ["campaign"], registry=r
        )
        self.lines_per_ready_agent = Gauge(
            "dialer_lines_per_ready_agent", "Calls in flight per ready agent (calls in flight when none is ready).",
            ["campaign"], registry=r,
        )
        self.gate_decisions = Counter(
            "dialer_gate_decisions", "Compliance gate decisions by reason (ok: allowed).", ["campaign", "reason"],
            registry=r,
        )
        self.sip_responses = Counter(
            "dialer_sip_responses", "SIP responses to our INVITEs by class.", ["trunk", "class"], registry=r
        )
        self.answer_to_bridge = Histogram(
            "dialer_answer_to_bridge_seconds", "From the callee's answer to the bridge with an agent.", ["campaign"],
            buckets=ANSWER_TO_BRIDGE_BUCKETS, registry=r,
        )
        self.agent_wait = Histogram(
            "dialer_agent_wait_seconds", "Time an agent waited ready between calls.",
            buckets=AGENT_WAIT_BUCKETS, registry=r,
        )
        # per call leg as it ends; peer: the trunk, or "agents" for the agents' phones
        self.rtp_packets_received = Counter(
            "dialer_rtp_packets_received", "RTP packets received from the peer.", ["peer"], registry=r
        )
        self.rtp_packets_lost = Counter(
            "dialer_rtp_packets_lost", "RTP packets the peer sent us that never arrived (sequence gaps).", ["peer"],
            registry=r,
        )
        self.rtp_packets_lost_by_peer = Counter(
            "dialer_rtp_packets_lost_by_peer", "RTP packets we sent that the peer reported lost (RTCP).", ["peer"],
            registry=r,
        )
        self.rtp_jitter = Histogram(
            "dialer_rtp_jitter_seconds", "Interarrival jitter of the RTP received on a call leg, at its end (RFC 3550).",
            ["peer"], buckets=RTP_JITTER_BUCKETS, registry=r,
        )
        for state in AGENT_STATES:
            self.agents.labels(state).set(0)

    # ------------------------------------------------------------ feeding

    def apply(self, item: ev.Event | ev.Command) -> None:
        """Count one event fed to the core or one command it returned (others are ignored)."""
        match item:
            case ev.RecordOutcome(campaign=campaign, outcome=outcome):
                self.calls.labels(campaign, outcome).inc()
                if outcome == "abandoned":
                    self.abandoned_calls.labels(campaign).inc()
            case ev.WriteCdr(campaign=campaign, trunk=trunk, sip_code=sip_code, answered_at=answered, bridged_at=bridged):
                if sip_code is not None:
                    self.observe_sip_response(trunk, sip_code)
                if answered is not None and bridged is not None:
                    self.answer_to_bridge.labels(campaign).observe(bridged - answered)
            case ev.AgentStateChanged(old="ready", new="talking", elapsed_s=waited):
                self.agent_wait.observe(waited)
            case ev.LeadsGranted(campaign=campaign, leads=leads) if leads:
                self.gate_decisions.labels(campaign, "ok").inc(len(leads))
            case ev.LeadRefused(campaign=campaign, reason=reason):
                self.gate_decisions.labels(campaign, _bounded_reason(reason)).inc()

    def apply_all(self, items: Iterable[ev.Event | ev.Command]) -> None:
        for item in items:
            self.apply(item)

    def observe_sip_response(self, trunk: str, code: int) -> None:
        """Final responses are counted from CDRs by apply(); the switch reports provisional ones here (the runtime wires
        it to `Switch.on_provisional_response`)."""
        self.sip_responses.labels(trunk, sip_class(code)).inc()

    def observe_media(self, peer: str, quality: MediaQuality) -> None:
        """One call leg's media at its end (the runtime wires it to `Switch.on_media_ended`)."""
        self.rtp_packets_received.labels(peer).inc(quality.packets_received)
        self.rtp_packets_lost.labels(peer).inc(quality.packets_lost)
        self.rtp_jitter.labels(peer).observe(quality.jitter_s)
        if quality.remote_reported_lost is not None:
            self.rtp_packets_lost_by_peer.labels(peer).inc(quality.remote_reported_lost)

    def apply_status(self, status: dict) -> None:
        """Refresh the gauges from ``EngineCore.live_status(now)``."""
        for state, count in status["agents"].items():
            self.agents.labels(state).set(count)
        for campaign, figures in status["campaigns"].items():
            in_flight = figures["calls_in_flight"]
            self.calls_in_flight.labels(campaign).set(in_flight)
            self.abandon_rate.labels(campaign).set(figures["abandon_rate"])
            self.lines_per_ready_agent.labels(campaign).set(in_flight / max(1, figures["ready_agents"]))


def _bounded_reason(reason: str) -> str:
    return reason if GATE_REASON_PATTERN.match(reason) else "other"


def serve_metrics(registry: CollectorRegistry, host: str, port: int):
    """Serve /metrics with prometheus_client's own exposition; port 0 picks a free port.

    Returns (server, thread); the bound port is ``server.server_port``; stop with ``server.shutdown()``.
    """
    return start_http_server(port, addr=host, registry=registry)
