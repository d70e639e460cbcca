"""Property tests: random event sequences never break the core's invariants."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.core import events as ev
from dialer.errors import Conflict
from tests.dialer.core.harness import Harness, campaign

AGENTS = ("a1", "a2", "a3")
CHANNELS, CPS = 4, 2.0


def check_invariants(h: Harness, granted: set[int], refused: set[int]) -> None:
    core = h.core
    trunk = core.trunks["t1"]
    assert 0 <= trunk.in_use <= CHANNELS
    assert trunk.in_use == len(core.calls)
    talking = [c.agent_id for c in core.calls.values() if c.state == "bridged"]
    assert len(talking) == len(set(talking))  # an agent talks to one caller at a time
    for call in core.calls.values():
        if call.state == "waiting":
            assert h.now - call.answered_at <= 2.0 + 1e-9  # nobody waits past the connect limit
        if call.state == "bridged":
            assert core.agents[call.agent_id].state in ("talking", "wrap_up", "logged_out")
    originated = [c.lead_id for c in h.log if isinstance(c, ev.Originate)]
    assert set(originated) <= granted and not set(originated) & refused
    starts = h.originate_times
    for i, t in enumerate(starts):  # calls per second: no more than CPS starts in any 1 s window
        assert sum(1 for u in starts[i:] if u < t + 1.0) <= CPS


actions = st.one_of(
    st.tuples(st.just("time"), st.floats(0.0, 8.0)),
    st.tuples(st.just("grant"), st.integers(0, 3)),
    st.tuples(st.just("refuse"), st.integers(0, 0)),
    st.tuples(st.sampled_from(["answer", "fail", "end", "announced", "ringing"]), st.integers(0, 20)),
    st.tuples(st.sampled_from(["login", "leg_up", "leg_down", "ready", "pause", "logout", "dispose"]),
              st.integers(0, len(AGENTS) - 1)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=60), st.sampled_from(["busy", "no_answer", "invalid", "congestion"]))
def test_random_event_sequences_keep_every_invariant(script, failure):
    h = Harness(campaign(wrap_up_s=3.0, ring_timeout_s=10.0), trunks=(("t1", CHANNELS, CPS),))
    h.originate_times = []
    granted: set[int] = set()
    refused: set[int] = set()
    refused_ids = iter(range(10**6, 2 * 10**6))

    def send(event):
        out = h.send(event)
        h.originate_times.extend(h.now for c in out if isinstance(c, ev.Originate))
        return out

    def call_at(index: int):
        ids = sorted(h.core.calls)
        return ids[index % len(ids)] if ids else None

    for kind, arg in script:
        if kind == "time":
            target = h.now + arg
            while (deadline := h.core.next_deadline()) is not None and deadline <= target:
                h.now = max(h.now, deadline)
                send(ev.Tick())
            h.now = target
            send(ev.Tick())
        elif kind == "grant":
            leads = tuple(h.lead() for _ in range(arg))
            granted.update(lead.lead_id for lead in leads)
            send(ev.LeadsGranted("c1", 0, leads))
        elif kind == "refuse":
            lead_id = next(refused_ids)
            refused.add(lead_id)
            send(ev.LeadRefused("c1", lead_id, "dnc", None))
        elif kind in ("answer", "fail", "end", "announced", "ringing"):
            call_id = call_at(arg)
            if call_id is None:
                continue
            send({"answer": ev.Answered(call_id), "fail": ev.Failed(call_id, 486, failure),
                  "end": ev.Ended(call_id, "remote"), "announced": ev.AnnouncementFinished(call_id),
                  "ringing": ev.Ringing(call_id)}[kind])
        else:
            agent = AGENTS[arg]
            if kind == "dispose":
                record = h.core.agents.get(agent)
                if record is None or record.last_call_id is None:
                    continue
                send(ev.Disposition(agent, record.last_call_id, "done"))
            else:
                event = {"login": ev.AgentLoggedIn, "leg_up": ev.AgentLegUp, "leg_down": ev.AgentLegDown,
                         "ready": ev.AgentReady, "pause": ev.AgentPaused, "logout": ev.AgentLoggedOut}[kind](agent)
                try:
                    send(event)
                except Conflict:
                    record = h.core.agents.get(agent)
                    assert kind in ("ready", "pause") and (record is None or record.state == "logged_out")
        check_invariants(h, granted, refused)

    # every call that ended was written to a CDR once and had one outcome recorded per attempt
    originated = Counter(c.call_id for c in h.log if isinstance(c, ev.Originate))
    cdrs = Counter(c.call_id for c in h.log if isinstance(c, ev.WriteCdr))
    assert all(n == 1 for n in originated.values()) and all(n == 1 for n in cdrs.values())
    assert set(cdrs) <= set(originated)
    assert set(originated) - set(cdrs) == set(h.core.calls)
    outcomes = Counter(c.attempt_id for c in h.log if isinstance(c, ev.RecordOutcome))
    assert all(n == 1 for n in outcomes.values())
    # a bridge always takes a ready agent (so paused, wrapping-up or logged-out agents never get calls)
    for index, command in enumerate(h.log):
        if isinstance(command, ev.Bridge):
            changes = [c for c in h.log[:index] if isinstance(c, ev.AgentStateChanged) and c.agent_id == command.agent_id]
            assert changes[-1].old == "ready" and changes[-1].new == "talking"
