"""RFC 3261 section 17 transaction state machines on a virtual clock."""

from __future__ import annotations

from sip.message import Request, Response
from sip.transaction import (
    Address, ClientInviteTransaction, ClientNonInviteTransaction, Deliver, Send, ServerInviteTransaction,
    ServerNonInviteTransaction, State, Terminated, Timeout, Timers, TransactionLayer,
)

UDP = Address("udp", "192.0.2.9", 5060)
TCP = Address("tcp", "192.0.2.9", 5060)
T = Timers(t1=0.5, t2=4.0, t4=5.0)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc") -> Request:
    return Request(method, "sip:bob@192.0.2.9", [
        ("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"), ("From", "<sip:a@h>;tag=f"),
        ("To", "<sip:bob@h>"), ("Call-ID", "c1"), ("CSeq", f"1 {method}"), ("Max-Forwards", "70"),
    ])


def response(req: Request, status: int, to_tag: str = "t1") -> Response:
    return Response(status, headers=[("Via", req.headers.get("Via")), ("From", req.headers.get("From")),
                                     ("To", f"<sip:bob@h>;tag={to_tag}"), ("Call-ID", "c1"),
                                     ("CSeq", req.headers.get("CSeq"))])


def run_until(tx, end: float) -> list:  # type: ignore[no-untyped-def]
    actions = []
    while (deadline := tx.next_deadline()) is not None and deadline <= end:
        actions += [(deadline, a) for a in tx.on_timer(deadline)]
    return actions


def test_invite_client_retransmits_with_doubling_timer_a_then_times_out_on_b() -> None:
    tx = ClientInviteTransaction(request(), UDP, T)
    assert isinstance(tx.start(0.0)[0], Send)
    fired = run_until(tx, 100.0)
    sends = [at for at, a in fired if isinstance(a, Send)]
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [type(a) for at, a in fired[-2:]] == [Timeout, Terminated]
    assert fired[-1][0] == 32.0 and tx.state is State.TERMINATED


def test_invite_client_over_tcp_does_not_retransmit() -> None:
    tx = ClientInviteTransaction(request(), TCP, T)
    tx.start(0.0)
    assert [type(a) for _, a in run_until(tx, 100.0)] == [Timeout, Terminated]


def test_invite_client_acks_non_2xx_in_transaction_and_absorbs_retransmissions() -> None:
    req = request()
    tx = ClientInviteTransaction(req, UDP, T)
    tx.start(0.0)
    assert [type(a) for a in tx.feed(response(req, 180), 0.1)] == [Deliver]
    assert run_until(tx, 60.0) == []  # Timer B is off once a provisional arrived: the TU cancels
    actions = tx.feed(response(req, 486), 61.0)
    ack = actions[0].message
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.cseq.method == "ACK"
    assert ack.via.branch == req.via.branch and ack.to.tag == "t1"
    assert isinstance(actions[1], Deliver) and tx.state is State.COMPLETED
    again = tx.feed(response(req, 486), 62.0)
    assert len(again) == 1 and again[0].message is ack  # ACK re-sent, no second delivery
    assert [type(a) for _, a in run_until(tx, 200.0)] == [Terminated]  # Timer D = 32 s


def test_invite_client_2xx_enters_accepted_and_passes_retransmissions_up() -> None:
    req = request()
    tx = ClientInviteTransaction(req, UDP, T)
    tx.start(0.0)
    assert [type(a) for a in tx.feed(response(req, 200), 0.2)] == [Deliver]
    assert tx.state is State.ACCEPTED
    assert [type(a) for a in tx.feed(response(req, 200), 0.7)] == [Deliver]
    fired = run_until(tx, 100.0)
    assert [type(a) for _, a in fired] == [Terminated] and fired[0][0] == 0.2 + 32.0  # Timer M


def test_non_invite_client_timer_e_caps_at_t2_and_f_times_out() -> None:
    tx = ClientNonInviteTransaction(request("OPTIONS"), UDP, T)
    tx.start(0.0)
    sends = [at for at, a in run_until(tx, 100.0) if isinstance(a, Send)]
    assert sends[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5, 1, 2, 4, then capped at T2=4
    assert tx.state is State.TERMINATED


def test_non_invite_client_final_response_then_timer_k() -> None:
    req = request("BYE")
    tx = ClientNonInviteTransaction(req, UDP, T)
    tx.start(0.0)
    assert [type(a) for a in tx.feed(response(req, 200), 0.3)] == [Deliver]
    assert tx.feed(response(req, 200), 0.4) == []
    fired = run_until(tx, 100.0)
    assert fired[0][0] == 0.3 + 5.0 and isinstance(fired[0][1], Terminated)


def test_invite_server_resends_final_until_ack_then_confirmed() -> None:
    req = request()
    tx = ServerInviteTransaction(req, UDP, T)
    tx.respond(response(req, 100), 0.0)
    busy = response(req, 486)
    assert tx.respond(busy, 1.0)[0].message is busy
    assert tx.feed(req, 1.2)[0].message is busy  # INVITE retransmission gets the final again
    fired = run_until(tx, 2.6)
    assert [at for at, _ in fired] == [1.5, 2.5]  # Timer G: 0.5, 1.0
    ack = request("ACK")
    assert tx.feed(ack, 2.7) == [] and tx.state is State.CONFIRMED
    fired = run_until(tx, 100.0)
    assert [type(a) for _, a in fired] == [Terminated] and fired[0][0] == 2.7 + 5.0  # Timer I = T4


def test_invite_server_timer_h_without_ack() -> None:
    req = request()
    tx = ServerInviteTransaction(req, UDP, T)
    tx.respond(response(req, 404), 0.0)
    fired = run_until(tx, 100.0)
    assert [type(a) for _, a in fired[-2:]] == [Timeout, Terminated] and fired[-1][0] == 32.0


def test_non_invite_server_absorbs_retransmissions_until_timer_j() -> None:
    req = request("OPTIONS")
    tx = ServerNonInviteTransaction(req, UDP, T)
    ok = response(req, 200)
    tx.respond(ok, 0.0)
    assert tx.feed(req, 5.0)[0].message is ok
    fired = run_until(tx, 100.0)
    assert fired[0][0] == 32.0 and isinstance(fired[0][1], Terminated)


def test_layer_matches_responses_and_requests_by_branch_and_method() -> None:
    layer = TransactionLayer(T)
    invite = request()
    client, _ = layer.send_request(invite, UDP, 0.0)
    cancel = request("CANCEL")
    cancel_tx, _ = layer.send_request(cancel, UDP, 0.0)
    assert client is not cancel_tx
    delivered = layer.receive_response(response(cancel, 200), 0.1)
    assert delivered is not None and delivered[0] is cancel_tx and delivered[1][0].transaction is cancel_tx
    assert layer.receive_response(response(request(branch="z9hG4bKother"), 200), 0.1) is None
    server, _, new = layer.receive_request(request(branch="z9hG4bKin"), UDP, 0.0)
    again, _, new_again = layer.receive_request(request(branch="z9hG4bKin"), UDP, 0.1)
    assert new and not new_again and again is server
    assert layer.receive_request(request("ACK", branch="z9hG4bKfresh"), UDP, 0.2) == (None, [], True)
