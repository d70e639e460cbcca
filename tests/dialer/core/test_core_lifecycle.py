"""Wrap-up, retries, trunk limits, the gate's answers, the pacing tick and what the pacer observes."""

from __future__ import annotations

import pytest

from dialer.config import RetryRule, RetrySettings
from dialer.core import events as ev
from dialer.errors import Conflict, NotFound
from tests.dialer.core.harness import Harness, campaign, of


def test_wrap_up_timer_keeps_the_agent_from_calls_until_it_ends():
    h = Harness(campaign(wrap_up_s=10.0))
    h.agent_up("a1", at=0.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    out = h.send(ev.Ended(call.call_id, "remote"), at=61.0)
    assert of(ev.AgentStateChanged, out) == [ev.AgentStateChanged("a1", "talking", "wrap_up", 60.0)]
    assert h.core.next_deadline() == 71.0
    [call2] = h.dial(1)
    assert not of(ev.Bridge, h.send(ev.Answered(call2.call_id), at=70.0))  # still wrapping up
    out = h.advance(71.0)
    assert of(ev.Bridge, out) == [ev.Bridge(call2.call_id, "a1", f"c1/{call2.call_id}.wav")]
    assert [type(e).__name__ for e in h.policies["c1"].observed if type(e).__name__ == "WrapUpEnded"] == ["WrapUpEnded"]
    assert [e.wrap_s for e in h.policies["c1"].observed if hasattr(e, "wrap_s")] == [10.0]


def test_disposition_ends_wrap_up_early_and_is_recorded():
    h = Harness(campaign(wrap_up_s=30.0))
    h.agent_up("a1", at=0.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    h.send(ev.Ended(call.call_id, "local"), at=20.0)
    out = h.send(ev.Disposition("a1", call.call_id, "sale"), at=25.0)
    assert of(ev.RecordDisposition, out) == [ev.RecordDisposition("c1", call.call_id, call.lead_id, "a1", "sale")]
    assert h.core.agents["a1"].state == "ready"
    with pytest.raises(NotFound):
        h.send(ev.Disposition("a1", "c1-unknown", "sale"), at=26.0)


RULES = RetrySettings(busy=RetryRule(retry_after_s=600), no_answer=RetryRule(retry_after_s=7200),
                      congestion=RetryRule(retry_after_s=300), failed=RetryRule(retry_after_s=None),
                      abandoned=RetryRule(retry_after_s=86400), max_attempts=3)


@pytest.mark.parametrize(
    ("outcome", "attempt_number", "delay"),
    [("busy", 1, 600.0), ("no_answer", 2, 7200.0), ("congestion", 1, 300.0), ("failed", 1, None),
     ("busy", 3, None), ("invalid", 1, None), ("rejected", 1, None)],
)
def test_failed_attempt_is_retried_per_outcome_rule_until_max_attempts(outcome, attempt_number, delay):
    h = Harness(campaign(retry=RULES))
    [call] = h.dial(1, attempt_number=attempt_number)
    out = h.send(ev.Failed(call.call_id, 486, outcome), at=10.0)
    [retry] = of(ev.ScheduleRetry, out)
    assert (retry.lead_id, retry.delay_s, retry.at_s, retry.closed, retry.outcome) == (
        call.lead_id, delay, None if delay is None else 10.0 + delay, delay is None, outcome)
    assert of(ev.RecordOutcome, out) == [ev.RecordOutcome("c1", call.attempt_id, call.lead_id, outcome, 486)]
    [cdr] = of(ev.WriteCdr, out)
    assert (cdr.outcome, cdr.sip_code, cdr.answered_at, cdr.trunk) == (outcome, 486, None, "t1")


def test_answered_lead_is_closed_and_abandoned_lead_is_retried_per_rule():
    h = Harness(campaign(retry=RULES))
    h.agent_up("a1", at=0.0)
    [answered, abandoned] = h.dial(2)
    out = h.send(ev.Answered(answered.call_id), at=1.0)
    assert [(r.lead_id, r.closed, r.outcome) for r in of(ev.ScheduleRetry, out)] == [(answered.lead_id, True, "answered")]
    h.send(ev.Answered(abandoned.call_id), at=1.0)
    out = h.advance(3.0)
    assert [(r.lead_id, r.delay_s) for r in of(ev.ScheduleRetry, out)] == [(abandoned.lead_id, 86400.0)]


def test_ring_timeout_cancels_the_call_and_counts_no_answer():
    h = Harness(campaign(ring_timeout_s=25.0))
    [call] = h.dial(1)
    h.send(ev.Ringing(call.call_id), at=1.0)
    out = h.advance(25.0)
    assert of(ev.Cancel, out) == [ev.Cancel(call.call_id)]
    assert [(r.outcome, r.sip_code) for r in of(ev.RecordOutcome, out)] == [("no_answer", 487)]
    assert not h.send(ev.Failed(call.call_id, 487, "no_answer"), at=25.1)  # late answer from the switch: ignored
    assert call.ring_timeout_s == 25.0


def test_trunk_channels_and_calls_per_second_are_respected():
    h = Harness(trunks=(("t1", 3, 2.0),))
    originated = h.dial(6)
    assert len(originated) == 2  # 2 calls per second
    assert h.core.next_deadline() == 1.0
    out = h.advance(1.0)
    assert len(of(ev.Originate, out)) == 1  # only 3 channels
    assert h.core.trunks["t1"].in_use == 3
    assert not of(ev.Originate, h.advance(5.0))
    out = h.send(ev.Failed(originated[0].call_id, 486, "busy"), at=5.0)  # a channel frees
    assert len(of(ev.Originate, out)) == 1
    starts = [c for c in h.log if isinstance(c, ev.Originate)]
    assert len(starts) == 4 and h.core.trunks["t1"].in_use == 3


def test_calls_overflow_to_the_campaign_s_next_trunk_in_order():
    h = Harness(campaign(trunks=("t1", "t2")), trunks=(("t1", 1, 10.0), ("t2", 5, 10.0)))
    assert [o.trunk for o in h.dial(3)] == ["t1", "t2", "t2"]


def test_a_refused_lead_is_never_originated_and_is_rescheduled_by_the_gate_s_time():
    h = Harness()
    h.send(ev.CampaignStart("c1"), at=0.0)
    out = h.send(ev.LeadRefused("c1", 42, "outside_calling_window", 3600.0), at=1.0)
    assert of(ev.ScheduleRetry, out) == [ev.ScheduleRetry("c1", 42, 3600.0, 3599.0, "outside_calling_window")]
    out = h.send(ev.LeadRefused("c1", 43, "dnc", None), at=1.0)
    assert of(ev.ScheduleRetry, out)[0].closed
    out = h.send(ev.LeadsGranted("c1", 1, (ev.GrantedLead(44, "+14155550144", 7),)), at=1.0)
    assert [o.lead_id for o in of(ev.Originate, out)] == [44]
    assert {o.lead_id for o in of(ev.Originate, h.log)} == {44}


def test_pacing_tick_asks_the_gate_for_what_the_policy_decides_and_counts_pending_requests():
    h = Harness(campaign(), trunks=(("t1", 10, 100.0),))
    h.policies["c1"].per_tick = 4
    h.agent_up("a1", at=0.0)
    out = h.send(ev.CampaignStart("c1"), at=0.0)
    [request] = of(ev.RequestLeads, out)
    assert (request.campaign, request.count) == ("c1", 4)
    out = h.advance(1.0)  # the gate has not answered yet: the pending four are in flight for the pacer
    snapshot = h.policies["c1"].snapshots[-1]
    assert len(snapshot.calls_in_flight) == 4 and snapshot.free_trunk_channels == 6
    [second] = of(ev.RequestLeads, out)
    h.send(ev.LeadsGranted("c1", request.request_id, tuple(h.lead() for _ in range(3))))
    h.send(ev.LeadsGranted("c1", second.request_id, ()))
    out = h.advance(2.0)
    assert h.policies["c1"].snapshots[-1].free_trunk_channels == 7
    assert of(ev.RequestLeads, out)[0].count == 4


def test_policy_decision_is_capped_by_free_trunk_channels():
    h = Harness(trunks=(("t1", 2, 100.0),))
    h.policies["c1"].per_tick = 50
    out = h.send(ev.CampaignStart("c1"), at=0.0)
    assert of(ev.RequestLeads, out)[0].count == 2


def test_paused_and_stopped_campaigns_ask_for_no_leads():
    h = Harness()
    h.policies["c1"].per_tick = 1
    h.send(ev.CampaignStart("c1"), at=0.0)
    h.send(ev.CampaignPause("c1"), at=0.5)
    assert h.core.next_deadline() is None
    h.send(ev.CampaignStart("c1"), at=3.0)
    h.send(ev.CampaignStop("c1"), at=3.5)
    h.advance(10.0)
    assert [r.count for r in of(ev.RequestLeads, h.log)] == [1, 1]


def test_abandon_cap_reaches_the_pacer_snapshot():
    h = Harness()
    h.send(ev.AbandonCapChanged("c1", True), at=0.0)
    h.send(ev.CampaignStart("c1"), at=0.0)
    assert h.policies["c1"].snapshots[-1].abandon_cap_active is True


def test_pacer_observes_every_outcome_event_with_times():
    h = Harness(campaign(wrap_up_s=5.0))
    h.agent_up("a1", at=0.0)
    [talked, busy, dropped] = h.dial(3)
    h.send(ev.Failed(busy.call_id, 486, "busy"), at=3.0)
    h.send(ev.Answered(talked.call_id), at=4.0)
    h.send(ev.Answered(dropped.call_id), at=5.0)
    h.advance(7.0)
    h.send(ev.Ended(talked.call_id, "remote"), at=64.0)
    h.advance(70.0)
    observed = [(type(e).__name__, e.at) + tuple(getattr(e, f) for f in e.__slots__ if f != "at")
                for e in h.policies["c1"].observed]
    assert observed == [
        ("CallLaunched", 0.0), ("CallLaunched", 0.0), ("CallLaunched", 0.0),
        ("CallFailed", 3.0, 3.0, "busy"),
        ("CallAnswered", 4.0, 4.0), ("CallConnected", 4.0, 0.0),
        ("CallAnswered", 5.0, 5.0), ("CallAbandoned", 7.0),
        ("TalkEnded", 64.0, 60.0), ("WrapUpEnded", 69.0, 5.0),
    ]


def test_logout_during_a_call_waits_for_the_call_and_releases_the_leg():
    h = Harness(campaign(wrap_up_s=5.0))
    h.agent_up("a1", at=0.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    assert not of(ev.ReleaseAgent, h.send(ev.AgentLoggedOut("a1"), at=2.0))
    h.send(ev.Ended(call.call_id, "remote"), at=3.0)
    out = h.advance(8.0)
    assert of(ev.ReleaseAgent, out) == [ev.ReleaseAgent("a1")]
    assert h.core.agents["a1"].state == "logged_out"
    assert h.core.live_status(8.0)["agents"]["logged_out"] == 1


def test_agent_leg_dropping_mid_call_hangs_up_the_customer_and_logs_out():
    h = Harness()
    h.agent_up("a1", at=0.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    out = h.send(ev.AgentLegDown("a1"), at=2.0)
    assert of(ev.Hangup, out) == [ev.Hangup(call.call_id, "agent_gone")]
    assert [c.outcome for c in of(ev.WriteCdr, out)] == ["answered"]
    assert h.core.agents["a1"].state == "logged_out"


def test_login_asks_for_the_agent_leg_and_agent_is_ready_only_when_it_is_up():
    h = Harness()
    out = h.send(ev.AgentLoggedIn("a1"), at=0.0)
    assert of(ev.CallAgent, out) == [ev.CallAgent("a1")]
    [call] = h.dial(1)
    assert not of(ev.Bridge, h.send(ev.Answered(call.call_id), at=0.5))
    assert of(ev.Bridge, h.send(ev.AgentLegUp("a1"), at=1.0))


def test_agents_serve_only_their_campaigns():
    h = Harness(campaign("c1", agents=("a1",)), campaign("c2", agents=("a2",)))
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=1.0)
    [call] = h.dial(1, campaign_name="c2")
    assert [b.agent_id for b in of(ev.Bridge, h.send(ev.Answered(call.call_id), at=2.0))] == ["a2"]


def test_time_cannot_go_backwards():
    h = Harness()
    h.send(ev.Tick(), at=5.0)
    with pytest.raises(ValueError):
        h.send(ev.Tick(), at=4.0)


def test_real_progressive_policy_dials_one_line_per_ready_agent_counting_lines_in_flight():
    from dialer.core import EngineCore
    from dialer.core.pacer import campaign_policy
    from pacing.settings import PacingSettings

    settings = campaign(pacing=PacingSettings(mode="progressive"))
    core = EngineCore([settings], [("t1", 30, 10.0)], campaign_policy)
    for agent in ("a1", "a2", "a3"):
        core.handle(ev.AgentLoggedIn(agent), 0.0)
        core.handle(ev.AgentLegUp(agent), 0.0)
    core.handle(ev.AgentPaused("a3"), 0.0)
    [request] = of(ev.RequestLeads, core.handle(ev.CampaignStart("c1"), 0.0))
    assert request.count == 2  # the paused agent is not counted
    assert not of(ev.RequestLeads, core.handle(ev.Tick(), 1.0))  # two requests still pending


def test_a_calls_per_second_slot_opens_exactly_when_promised_despite_float_rounding():
    from dialer.core.trunks import TrunkPool

    start = 1.3436424411240122  # (start + 1.0) - 1.0 < start in binary floating point
    pool = TrunkPool([("t1", 10, 1.0)])
    pool.start("t1", start)
    promised = pool.next_start_at(["t1"], start + 0.5)
    assert promised == start + 1.0
    assert pool.pick(["t1"], promised) == "t1"


def test_caller_mistakes_raise_the_errors_the_api_maps():
    h = Harness()
    with pytest.raises(NotFound, match="unknown campaign 'nope'"):
        h.send(ev.CampaignStart("nope"), at=0.0)
    with pytest.raises(Conflict, match="not logged in"):
        h.send(ev.AgentReady("a9"), at=0.0)
    h.agent_up("a1", at=0.0)
    h.send(ev.AgentLoggedOut("a1"), at=1.0)
    with pytest.raises(Conflict, match="not logged in"):
        h.send(ev.AgentPaused("a1"), at=2.0)
    assert h.send(ev.AgentLoggedOut("a1"), at=3.0) == []  # logging out twice is harmless


def test_commands_of_timers_fired_before_a_refused_event_are_not_lost():
    h = Harness()
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    with pytest.raises(Conflict):
        h.send(ev.AgentReady("ghost"), at=5.0)  # the connect limit (3.0) fires first
    out = h.send(ev.Tick(), at=5.0)
    assert of(ev.PlayAnnouncement, out) == [ev.PlayAnnouncement(call.call_id, None)]


def test_shared_trunk_slots_go_to_the_higher_priority_campaign_first():
    h = Harness(campaign("low", priority=0), campaign("high", priority=5), trunks=(("t1", 10, 1.0),))
    h.send(ev.LeadsGranted("low", 0, (h.lead(), h.lead())), at=0.0)  # low takes the only slot of second 0
    out = h.send(ev.LeadsGranted("high", 0, (h.lead(), h.lead())), at=0.5)
    assert not of(ev.Originate, out)
    assert [o.campaign for o in of(ev.Originate, h.advance(1.0))] == ["high"]
    assert [o.campaign for o in of(ev.Originate, h.advance(2.0))] == ["high"]
    assert [o.campaign for o in of(ev.Originate, h.advance(3.0))] == ["low"]


def test_an_agent_of_two_campaigns_takes_the_longest_waiting_call_of_either():
    h = Harness(campaign("c1"), campaign("c2"))
    [first] = h.dial(1, campaign_name="c2")
    [second] = h.dial(1, campaign_name="c1")
    h.send(ev.Answered(first.call_id), at=1.0)
    h.send(ev.Answered(second.call_id), at=1.5)
    out = h.agent_up("a1", at=2.0)
    assert [(b.call_id, b.agent_id) for b in of(ev.Bridge, out)] == [(first.call_id, "a1")]


def test_live_status_counts_lines_and_ready_agents():
    h = Harness()
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=0.0)
    h.dial(3)
    status = h.core.live_status(1.0)
    assert status["agents"]["ready"] == 2
    assert status["campaigns"]["c1"]["calls_in_flight"] == 3 and status["campaigns"]["c1"]["ready_agents"] == 2
    assert status["calls"] == 3


def test_call_ids_and_recording_names_carry_the_boot_prefix():
    from dialer.core import EngineCore
    from tests.dialer.core.harness import ScriptedPolicy

    core = EngineCore([campaign()], [("t1", 5, 5.0)], lambda c: ScriptedPolicy(), call_id_prefix="node1.b7f3-")
    core.handle(ev.AgentLoggedIn("a1"), 0.0)
    core.handle(ev.AgentLegUp("a1"), 0.0)
    [originate] = of(ev.Originate, core.handle(ev.LeadsGranted("c1", 1, (ev.GrantedLead(1, "+14155550100", 9),)), 0.0))
    assert originate.call_id == "node1.b7f3-c1-1"
    [bridge] = of(ev.Bridge, core.handle(ev.Answered(originate.call_id), 1.0))
    assert bridge.recording_name == "c1/node1.b7f3-c1-1.wav"
