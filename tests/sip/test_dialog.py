"""Dialogs and INVITE sessions (RFC 3261 12-15, RFC 4028) driven without sockets, on a virtual clock."""

from __future__ import annotations

from sip.dialog import (
    Answered, InviteSession, MediaUpdated, Phase, Progress, Rejected, SendAck, SendRequest, SendResponse,
    SessionEnded,
)
from sip.message import Request, Response, make_response, parse_message
from sip.transaction import Timers

T = Timers(0.5, 4.0, 5.0)
CONTACT = "<sip:dialer@192.0.2.1:5060>"
OFFER = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite() -> Request:
    return Request("INVITE", "sip:+15551230000@carrier.example", [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1"), ("Max-Forwards", "70"),
        ("From", "<sip:+15550001111@192.0.2.1>;tag=ours"), ("To", "<sip:+15551230000@carrier.example>"),
        ("Call-ID", "call-1@192.0.2.1"), ("CSeq", "1 INVITE"), ("Contact", CONTACT),
        ("Content-Type", "application/sdp")], OFFER)


def reply(request: Request, status: int, *, tag: str = "theirs", extra=(), body: bytes = b"") -> Response:  # type: ignore[no-untyped-def]
    headers = [("Contact", "<sip:callee@192.0.2.9:5070>"), *extra]
    # through the wire format, as the real stack would see it
    return parse_message(make_response(request, status, to_tag=tag, headers=headers, body=body).to_bytes())  # type: ignore[return-value]


def answered_session(extra=()) -> tuple[InviteSession, Request]:  # type: ignore[no-untyped-def]
    session = InviteSession(T, CONTACT, answer_offer=lambda offer: OFFER)
    request = invite()
    session.start_uac(request, 0.0)
    session.on_response(request, reply(request, 180), 0.1)
    actions = session.on_response(request, reply(request, 200, body=OFFER, extra=extra), 1.0)
    assert isinstance(actions[0], SendAck) and isinstance(actions[1], Answered)
    return session, request


def test_uac_progress_answer_ack_uses_route_set_and_target() -> None:
    session = InviteSession(T, CONTACT)
    request = invite()
    assert session.start_uac(request, 0.0) == [SendRequest(request)]
    early = session.on_response(request, reply(request, 183, body=OFFER), 0.2)
    assert early == [Progress(183, OFFER)] and session.phase is Phase.EARLY
    rr = [("Record-Route", "<sip:p2.example;lr>"), ("Record-Route", "<sip:p1.example;lr>")]
    actions = session.on_response(request, reply(request, 200, extra=rr, body=OFFER), 1.0)
    ack = actions[0].request
    assert ack.method == "ACK" and ack.cseq.number == 1 and str(ack.uri) == "sip:callee@192.0.2.9:5070"
    assert [str(r.uri) for r in ack.routes] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert ack.to.tag == "theirs" and ack.from_.tag == "ours" and ack.via.branch != request.via.branch
    # a retransmitted 2xx gets the same ACK again (13.2.2.4)
    assert session.on_response(request, reply(request, 200, extra=rr, body=OFFER), 1.5) == [SendAck(ack)]


def test_uac_rejection_reports_status() -> None:
    session = InviteSession(T, CONTACT)
    request = invite()
    session.start_uac(request, 0.0)
    actions = session.on_response(request, reply(request, 486), 0.5)
    assert isinstance(actions[0], Rejected) and actions[0].status == 486 and session.phase is Phase.ENDED


def test_cancel_waits_for_provisional_then_goes_out() -> None:
    session = InviteSession(T, CONTACT)
    request = invite()
    session.start_uac(request, 0.0)
    assert session.cancel(0.1) == []
    actions = session.on_response(request, reply(request, 100, tag=""), 0.2)
    cancel = actions[0].request
    assert cancel.method == "CANCEL" and cancel.via.branch == request.via.branch
    assert cancel.cseq.number == 1 and cancel.cseq.method == "CANCEL" and cancel.to.tag is None
    final = session.on_response(request, reply(request, 487), 0.3)
    assert isinstance(final[0], Rejected) and final[0].status == 487


def test_200_crossing_our_cancel_is_acked_then_byed() -> None:
    session = InviteSession(T, CONTACT)
    request = invite()
    session.start_uac(request, 0.0)
    session.on_response(request, reply(request, 180), 0.1)
    assert session.cancel(30.0)[0].request.method == "CANCEL"
    actions = session.on_response(request, reply(request, 200, body=OFFER), 30.01)
    assert isinstance(actions[0], SendAck)
    assert isinstance(actions[1], SendRequest) and actions[1].request.method == "BYE"
    assert actions[2] == SessionEnded("local", "cancelled")
    assert not any(isinstance(a, Answered) for a in actions)


def test_forked_second_2xx_is_acked_and_released() -> None:
    session, request = answered_session()
    actions = session.on_response(request, reply(request, 200, tag="fork2"), 1.2)
    assert actions[0].request.method == "ACK" and actions[0].request.to.tag == "fork2"
    assert actions[1].request.method == "BYE" and actions[1].request.to.tag == "fork2"


def test_remote_bye_and_cseq_order() -> None:
    session, _ = answered_session()
    bye = session.dialog.create_request("BYE")  # type: ignore[union-attr]
    # turn it around as if the callee sent it
    remote = Request("BYE", "sip:dialer@192.0.2.1", [
        ("Via", "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKbye"), ("From", "<sip:+15551230000@carrier.example>;tag=theirs"),
        ("To", "<sip:+15550001111@192.0.2.1>;tag=ours"), ("Call-ID", bye.call_id), ("CSeq", "5 BYE")])
    actions = session.on_request(remote, 5.0)
    assert actions[0].response.status == 200 and actions[1] == SessionEnded("remote", "bye")
    old = Request("OPTIONS", "sip:dialer@192.0.2.1", [*[(n, v) for n, v in remote.headers if n != "CSeq"], ("CSeq", "4 OPTIONS")])
    assert session.on_request(old, 6.0)[0].response.status == 500


def test_hold_reinvite_and_glare_retry() -> None:
    session, _ = answered_session()
    hold = OFFER.replace(b"m=audio", b"a=sendonly\r\nm=audio")
    first = session.reinvite(hold, 10.0)[0].request
    assert first.method == "INVITE" and first.cseq.number == 2 and first.body == hold
    assert session.on_response(first, reply(first, 491), 10.1) == []
    deadline = session.next_deadline()
    assert deadline is not None and 10.1 + 2.1 <= deadline <= 10.1 + 4.0  # we own the Call-ID
    retry = session.on_timer(deadline)[0].request
    assert retry.method == "INVITE" and retry.cseq.number == 3 and retry.body == hold
    answer = OFFER.replace(b"m=audio", b"a=recvonly\r\nm=audio")
    actions = session.on_response(retry, reply(retry, 200, body=answer), 12.0)
    assert actions[0].request.method == "ACK" and actions[0].request.cseq.number == 3
    assert actions[1] == MediaUpdated(answer)


def test_incoming_reinvite_during_ours_gets_491() -> None:
    session, _ = answered_session()
    session.reinvite(OFFER, 10.0)
    theirs = Request("INVITE", "sip:dialer@192.0.2.1", [
        ("Via", "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKre"), ("From", "<sip:x@carrier.example>;tag=theirs"),
        ("To", "<sip:y@192.0.2.1>;tag=ours"), ("Call-ID", "call-1@192.0.2.1"), ("CSeq", "7 INVITE")], OFFER)
    assert session.on_request(theirs, 10.05)[0].response.status == 491


def test_session_timer_we_refresh_when_peer_names_uac() -> None:
    session, _ = answered_session(extra=[("Session-Expires", "120;refresher=uac"), ("Require", "timer")])
    assert session.next_deadline() == 1.0 + 60
    refresh = session.on_timer(61.0)[0].request
    assert refresh.method == "INVITE" and refresh.headers.get("Session-Expires") == "120;refresher=uac"


def test_session_timer_expiry_sends_bye_when_peer_is_refresher_and_silent() -> None:
    session, _ = answered_session(extra=[("Session-Expires", "120;refresher=uas")])
    assert session.next_deadline() == 1.0 + 120 - 32
    actions = session.on_timer(89.0)
    assert actions[0].request.method == "BYE" and actions[1] == SessionEnded("local", "session_expired")


def uas_session(extra=()) -> InviteSession:  # type: ignore[no-untyped-def]
    session = InviteSession(T, CONTACT, answer_offer=lambda offer: OFFER)
    incoming = Request("INVITE", "sip:agent@192.0.2.1", [
        ("Via", "SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKuas"), ("From", "<sip:agent7@example>;tag=a7"),
        ("To", "<sip:dialer@example>"), ("Call-ID", "in-1"), ("CSeq", "3 INVITE"),
        ("Contact", "<sip:agent7@192.0.2.7:5062>"), *extra], OFFER)
    session.start_uas(incoming, "localtag", "192.0.2.1:5060", "UDP")
    return session


def test_uas_retransmits_2xx_until_ack() -> None:
    session = uas_session()
    ok = session.uas_response(200, 0.0, sdp=OFFER)[0].response
    assert ok.to.tag == "localtag" and ok.contacts[0].uri.user == "dialer"
    times = []
    while (deadline := session.next_deadline()) is not None and deadline < 4.0:
        assert session.on_timer(deadline)[0].response is ok
        times.append(deadline)
    assert times == [0.5, 1.5, 3.5]
    ack = Request("ACK", "sip:dialer@192.0.2.1", [(n, v) for n, v in session.invite.headers if n != "CSeq"] + [("CSeq", "3 ACK")])  # type: ignore[union-attr]
    session.on_request(ack, 4.0)
    assert session.next_deadline() is None


def test_uas_without_ack_gives_up_with_bye() -> None:
    session = uas_session()
    session.uas_response(200, 0.0, sdp=OFFER)
    actions = []
    while (deadline := session.next_deadline()) is not None and deadline <= 32.0:
        actions += session.on_timer(deadline)
    assert any(isinstance(a, SendRequest) and a.request.method == "BYE" for a in actions)
    assert SessionEnded("local", "no_ack") in actions


def test_uas_session_timer_too_small_gets_422_and_accepted_one_is_confirmed() -> None:
    small = uas_session(extra=[("Session-Expires", "30"), ("Supported", "timer")])
    response = small.uas_response(200, 0.0, sdp=OFFER)[0].response
    assert response.status == 422 and response.headers.get("Min-SE") == "90"
    fine = uas_session(extra=[("Session-Expires", "1800"), ("Supported", "timer")])
    ok = fine.uas_response(200, 0.0, sdp=OFFER)[0].response
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac" and ok.headers.get("Require") == "timer"
