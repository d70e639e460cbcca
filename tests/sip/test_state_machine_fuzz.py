"""Property tests: any order of responses, requests and timer ticks leaves the transaction and session state
machines consistent (no exception, every transaction ends, one final outcome per call)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sip.dialog import Answered, InviteSession, Phase, Rejected, SendRequest
from sip.message import Request, make_response, parse_message
from sip.transaction import Address, ClientInviteTransaction, ClientNonInviteTransaction, State, Timers

T = Timers(0.5, 4.0, 5.0)
UDP = Address("udp", "192.0.2.9", 5060)
STATUSES = st.sampled_from([100, 180, 183, 200, 401, 407, 408, 480, 486, 487, 491, 503, 603])


def invite(method: str = "INVITE") -> Request:
    return Request(method, "sip:bob@192.0.2.9", [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz"), ("From", "<sip:a@h>;tag=f"), ("To", "<sip:bob@h>"),
        ("Call-ID", "fuzz-1"), ("CSeq", f"1 {method}"), ("Contact", "<sip:a@192.0.2.1>"), ("Max-Forwards", "70")])


def reply(request: Request, status: int, tag: str = "t"):  # type: ignore[no-untyped-def]
    headers = [("Contact", "<sip:bob@192.0.2.9>")] if status < 300 else []
    return parse_message(make_response(request, status, to_tag=tag, headers=headers).to_bytes())


steps = st.lists(st.one_of(st.tuples(st.just("response"), STATUSES), st.tuples(st.just("tick"), st.floats(0, 40))),
                 max_size=25)


@settings(max_examples=200, deadline=None)
@given(steps, st.booleans())
def test_client_transactions_always_terminate(sequence, is_invite: bool) -> None:  # type: ignore[no-untyped-def]
    request = invite("INVITE" if is_invite else "OPTIONS")
    tx = (ClientInviteTransaction if is_invite else ClientNonInviteTransaction)(request, UDP, T)
    now = 0.0
    tx.start(now)
    for kind, value in sequence:
        if kind == "response":
            tx.feed(reply(request, int(value)), now)
        else:
            now += value
            tx.on_timer(now)
    while tx.next_deadline() is not None:
        tx.on_timer(tx.next_deadline())  # type: ignore[arg-type]
    assert tx.state is State.TERMINATED or (tx.state is State.PROCEEDING and tx.next_deadline() is None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("response"), STATUSES, st.sampled_from(["t", "fork"])),
                          st.tuples(st.just("cancel"), st.just(0), st.just("")),
                          st.tuples(st.just("hangup"), st.just(0), st.just("")),
                          st.tuples(st.just("tick"), st.integers(0, 100), st.just(""))), max_size=25))
def test_invite_session_reports_at_most_one_outcome(sequence) -> None:  # type: ignore[no-untyped-def]
    session = InviteSession(T, "<sip:a@192.0.2.1>", answer_offer=lambda offer: offer)
    request = invite()
    session.start_uac(request, 0.0)
    outcomes = []
    now = 0.0
    for kind, value, tag in sequence:
        if kind == "response":
            actions = session.on_response(request, reply(request, value, tag), now)
        elif kind == "cancel":
            actions = session.cancel(now)
        elif kind == "hangup":
            actions = session.hangup(now)
        else:
            now += value
            actions = session.on_timer(now)
        outcomes += [a for a in actions if isinstance(a, (Answered, Rejected))]
        for action in actions:
            if isinstance(action, SendRequest) and action.request.method == "BYE":
                assert action.request.to.tag  # a BYE always belongs to a dialog (ours, a fork's, a late 2xx's)
    assert len(outcomes) <= 1
    if outcomes and isinstance(outcomes[0], Rejected):
        assert session.phase is Phase.ENDED
