"""Answered calls reach the longest-idle ready agent, or are abandoned at exactly the connect limit."""

from __future__ import annotations

from dialer.core import events as ev
from tests.dialer.core.harness import Harness, campaign, of


def test_answered_call_is_bridged_to_the_longest_idle_ready_agent():
    h = Harness()
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=1.0)
    h.agent_up("a3", at=2.0)
    [first, second] = h.dial(2)
    out = h.send(ev.Answered(first.call_id), at=5.0)
    assert of(ev.Bridge, out) == [ev.Bridge(first.call_id, "a1", f"c1/{first.call_id}.wav")]
    out = h.send(ev.Answered(second.call_id), at=6.0)
    assert [b.agent_id for b in of(ev.Bridge, out)] == ["a2"]


def test_agent_back_from_a_call_goes_to_the_end_of_the_idle_queue():
    h = Harness(campaign(wrap_up_s=0.0))
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=1.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=2.0)  # a1 talks
    h.send(ev.Ended(call.call_id, "remote"), at=3.0)  # a1 ready again, idle since 3.0; a2 idle since 1.0
    [call2] = h.dial(1)
    out = h.send(ev.Answered(call2.call_id), at=4.0)
    assert [b.agent_id for b in of(ev.Bridge, out)] == ["a2"]


def test_answered_call_without_agent_gets_announcement_at_exactly_the_connect_limit_and_is_abandoned():
    h = Harness(campaign(connect_limit_s=2.0, announcement="/srv/sorry.wav"))
    [call] = h.dial(1)
    out = h.send(ev.Answered(call.call_id), at=10.0)
    assert not of(ev.Bridge, out) and not of(ev.PlayAnnouncement, out)
    assert h.core.next_deadline() == 12.0
    assert not of(ev.PlayAnnouncement, h.advance(11.999))
    out = h.advance(12.0)
    assert of(ev.PlayAnnouncement, out) == [ev.PlayAnnouncement(call.call_id, "/srv/sorry.wav")]
    assert of(ev.RecordOutcome, out) == [ev.RecordOutcome("c1", call.attempt_id, call.lead_id, "abandoned", 200)]
    assert h.policies["c1"].observed_types()[-1] == "CallAbandoned"
    assert h.policies["c1"].observed[-1].at == 12.0
    # the announcement ends: hang up and write an abandoned CDR
    out = h.send(ev.AnnouncementFinished(call.call_id), at=16.0)
    assert of(ev.Hangup, out) == [ev.Hangup(call.call_id, "abandoned")]
    [cdr] = of(ev.WriteCdr, out)
    assert (cdr.abandoned, cdr.outcome, cdr.answered_at, cdr.bridged_at, cdr.ended_at) == (True, "abandoned", 10.0, None, 16.0)
    assert h.core.live_status(16.0)["campaigns"]["c1"]["abandon_rate"] == 1.0


def test_first_agent_to_become_ready_takes_the_longest_waiting_call_within_the_limit():
    h = Harness()
    [older, newer] = h.dial(2)
    h.send(ev.Answered(older.call_id), at=10.0)
    h.send(ev.Answered(newer.call_id), at=10.5)
    out = h.agent_up("a1", at=11.5)
    assert [(b.call_id, b.agent_id) for b in of(ev.Bridge, out)] == [(older.call_id, "a1")]
    assert h.policies["c1"].observed[-1] == type(h.policies["c1"].observed[-1])(at=11.5, answer_to_bridge_s=1.5)
    out = h.advance(12.5)  # the newer call reaches its limit; the bridged one is not touched
    assert [p.call_id for p in of(ev.PlayAnnouncement, out)] == [newer.call_id]


def test_callee_hanging_up_while_waiting_for_an_agent_counts_as_abandoned():
    h = Harness()
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    out = h.send(ev.Ended(call.call_id, "remote"), at=1.5)
    assert [r.outcome for r in of(ev.RecordOutcome, out)] == ["abandoned"]
    assert of(ev.WriteCdr, out)[0].abandoned
    assert h.core.next_deadline() is None or not of(ev.PlayAnnouncement, h.advance(5.0))


def test_paused_agents_never_get_calls():
    h = Harness()
    h.agent_up("a1", at=0.0)
    h.send(ev.AgentPaused("a1"), at=1.0)
    [call] = h.dial(1)
    assert not of(ev.Bridge, h.send(ev.Answered(call.call_id), at=2.0))
    assert of(ev.PlayAnnouncement, h.advance(4.0))
    assert not of(ev.Bridge, h.log)
    # back from pause, the agent takes the next call
    h.send(ev.AgentReady("a1"), at=5.0)
    [call2] = h.dial(1)
    assert [b.agent_id for b in of(ev.Bridge, h.send(ev.Answered(call2.call_id), at=6.0))] == ["a1"]


def test_pause_during_a_call_takes_effect_after_wrap_up():
    h = Harness(campaign(wrap_up_s=5.0))
    h.agent_up("a1", at=0.0)
    [call] = h.dial(1)
    h.send(ev.Answered(call.call_id), at=1.0)
    h.send(ev.AgentPaused("a1"), at=2.0)
    h.send(ev.Ended(call.call_id, "remote"), at=3.0)
    h.advance(8.0)
    assert h.core.agents["a1"].state == "paused"
    [call2] = h.dial(1)
    assert not of(ev.Bridge, h.send(ev.Answered(call2.call_id), at=9.0))


def test_paused_agents_are_shown_to_the_pacer_as_paused():
    h = Harness()
    h.agent_up("a1", at=0.0)
    h.agent_up("a2", at=0.0)
    h.send(ev.AgentPaused("a2"), at=1.0)
    snapshot = h.core.snapshot("c1", 3.0)
    assert {(a.agent_id, a.state, a.state_elapsed_s) for a in snapshot.agents} == {("a1", "ready", 3.0), ("a2", "paused", 2.0)}
