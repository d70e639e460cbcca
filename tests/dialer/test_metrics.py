"""Metrics follow the core's events and commands and are exposed over HTTP in Prometheus text format."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from dialer.core import events as ev
from dialer.metrics import DialerMetrics, serve_metrics, sip_class
from tests.dialer.core.harness import Harness, campaign


def value(metrics: DialerMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def run_a_small_campaign(metrics: DialerMetrics) -> Harness:
    h = Harness(campaign(wrap_up_s=5.0))
    h.agent_up("a1", at=0.0)
    [talked, busy, dropped] = h.dial(3)
    h.send(ev.Failed(busy.call_id, 486, "busy"), at=1.0)
    h.send(ev.Answered(talked.call_id), at=4.0)
    h.send(ev.Answered(dropped.call_id), at=4.5)
    h.advance(6.5)
    h.send(ev.AnnouncementFinished(dropped.call_id), at=9.0)
    h.send(ev.Ended(talked.call_id, "remote"), at=60.0)
    for event in (ev.LeadsGranted("c1", 9, (h.lead(), h.lead())), ev.LeadRefused("c1", 7, "dnc", None),
                  ev.LeadRefused("c1", 8, "+4915112345678 looks odd", None)):
        metrics.apply(event)
    metrics.apply_all(h.log)
    metrics.apply_status(h.core.live_status(60.0))
    return h


def test_calls_abandons_gate_decisions_and_sip_classes_are_counted():
    metrics = DialerMetrics()
    run_a_small_campaign(metrics)
    assert value(metrics, "dialer_calls_total", campaign="c1", outcome="answered") == 1
    assert value(metrics, "dialer_calls_total", campaign="c1", outcome="busy") == 1
    assert value(metrics, "dialer_calls_total", campaign="c1", outcome="abandoned") == 1
    assert value(metrics, "dialer_abandoned_calls_total", campaign="c1") == 1
    assert value(metrics, "dialer_abandon_rate", campaign="c1") == 0.5
    assert value(metrics, "dialer_gate_decisions_total", campaign="c1", reason="ok") == 2
    assert value(metrics, "dialer_gate_decisions_total", campaign="c1", reason="dnc") == 1
    assert value(metrics, "dialer_gate_decisions_total", campaign="c1", reason="other") == 1  # no number in a label
    assert value(metrics, "dialer_sip_responses_total", trunk="t1", **{"class": "4xx"}) == 1
    assert value(metrics, "dialer_sip_responses_total", trunk="t1", **{"class": "2xx"}) == 2


def test_histograms_and_gauges():
    metrics = DialerMetrics()
    run_a_small_campaign(metrics)
    assert value(metrics, "dialer_answer_to_bridge_seconds_count", campaign="c1") == 1
    assert value(metrics, "dialer_agent_wait_seconds_sum") == 4.0  # ready from 0 to 4
    assert value(metrics, "dialer_agents", state="wrap_up") == 1
    assert value(metrics, "dialer_agents", state="ready") == 0
    assert value(metrics, "dialer_calls_in_flight", campaign="c1") == 0


def test_fresh_registries_are_independent():
    first, second = DialerMetrics(), DialerMetrics(CollectorRegistry())
    first.calls.labels("c1", "busy").inc()
    assert value(second, "dialer_calls_total", campaign="c1", outcome="busy") is None


def test_sip_class_rejects_non_status_codes():
    assert [sip_class(c) for c in (180, 200, 302, 486, 503, 603)] == ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"]
    with pytest.raises(ValueError):
        sip_class(42)


def test_serve_metrics_exposes_the_registry_over_http():
    metrics = DialerMetrics()
    metrics.calls.labels("c1", "answered").inc(3)
    server, thread = serve_metrics(metrics.registry, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'dialer_calls_total{campaign="c1",outcome="answered"} 3.0' in body
    assert "dialer_agent_wait_seconds_bucket" in body


def test_lines_per_ready_agent_and_calls_in_flight_follow_the_core():
    metrics = DialerMetrics()
    h = Harness()
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=0.0)
    h.dial(5)
    metrics.apply_status(h.core.live_status(1.0))
    assert value(metrics, "dialer_calls_in_flight", campaign="c1") == 5
    assert value(metrics, "dialer_lines_per_ready_agent", campaign="c1") == 2.5
    assert value(metrics, "dialer_agents", state="ready") == 2


def test_media_quality_of_ended_legs_is_counted_per_peer():
    from sip.media.engine import MediaQuality

    metrics = DialerMetrics()
    metrics.observe_media("carrier-a", MediaQuality(990, 10, 0.004, 3, 0.002))
    metrics.observe_media("carrier-a", MediaQuality(500, 0, 0.030, None, None))  # no RTCP from the peer
    metrics.observe_media("agents", MediaQuality(1500, 2, 0.001, 0, 0.001))
    assert value(metrics, "dialer_rtp_packets_received_total", peer="carrier-a") == 1490
    assert value(metrics, "dialer_rtp_packets_lost_total", peer="carrier-a") == 10
    assert value(metrics, "dialer_rtp_packets_lost_by_peer_total", peer="carrier-a") == 3
    assert value(metrics, "dialer_rtp_packets_lost_total", peer="agents") == 2
    assert value(metrics, "dialer_rtp_jitter_seconds_count", peer="carrier-a") == 2
    assert value(metrics, "dialer_rtp_jitter_seconds_bucket", peer="carrier-a", le="0.005") == 1
    assert value(metrics, "dialer_rtp_jitter_seconds_bucket", peer="carrier-a", le="0.03") == 2
