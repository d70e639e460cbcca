"""RFC 3261 section 12-15 dialogs and the INVITE session that lives in one, as sans-I/O state machines.

`Dialog` holds the dialog state (ids, route set, remote target, CSeq) and builds in-dialog requests.
`InviteSession` runs one call leg: the UAC side (provisional/early dialogs, ACK for 2xx and its retransmissions,
CANCEL and the 200-crosses-CANCEL race, forked 2xx), the UAS side (2xx retransmission until ACK), re-INVITE for
hold/resume with 491 glare back-off, RFC 4028 session timers when the peer asks, and BYE from either side.
It takes messages and `now` and returns actions; SDP is opaque bytes produced by the `answer_offer` callable.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Union

from sip.headers import NameAddr, parse_name_addr
from sip.message import Headers, Request, Response, make_response
from sip.transaction import Timers, new_branch
from sip.uri import SipUri

MIN_SE_S = 90  # RFC 4028 minimum Session-Expires we accept


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # the From/To value without tag, as sent
    remote_uri: str
    local_contact: str
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int | None = None
    via_host: str = ""
    via_transport: str = "UDP"

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, invite: Request, response: Response, local_contact: str) -> Dialog:
        """12.1.2: route set is the reversed Record-Route of the response, target its Contact."""
        contacts = response.contacts
        target = contacts[0].uri if contacts else invite.uri
        return cls(
            call_id=invite.call_id, local_tag=invite.from_.tag or "", remote_tag=response.to.tag or "",
            local_uri=_strip_tag(invite.headers.get("From", "")), remote_uri=_strip_tag(invite.headers.get("To", "")),
            local_contact=local_contact, remote_target=target, route_set=list(reversed(response.record_routes)),
            local_cseq=invite.cseq.number, via_host=invite.via.sent_by, via_transport=invite.via.transport,
        )

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str, local_contact: str, via_host: str, via_transport: str) -> Dialog:
        """12.1.1: route set is the Record-Route of the request in order, target its Contact."""
        contacts = invite.contacts
        return cls(
            call_id=invite.call_id, local_tag=local_tag, remote_tag=invite.from_.tag or "",
            local_uri=_strip_tag(invite.headers.get("To", "")), remote_uri=_strip_tag(invite.headers.get("From", "")),
            local_contact=local_contact, remote_target=contacts[0].uri if contacts else invite.uri,
            route_set=invite.record_routes, local_cseq=random.randint(1, 2**20), remote_cseq=invite.cseq.number,
            via_host=via_host, via_transport=via_transport,
        )

    def next_hop(self) -> SipUri:
        if self.route_set:
            return self.route_set[0].uri
        return self.remote_target

    def create_request(self, method: str, *, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                       cseq: int | None = None, branch: str | None = None) -> Request:
        """12.2.1.1; ACK and CANCEL pass their CSeq explicitly."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri = self.remote_target
        routes = [str(r) for r in self.route_set]
        if self.route_set and not self.route_set[0].uri.has_param("lr"):  # strict router (12.2.1.1)
            uri = self.route_set[0].uri
            routes = routes[1:] + [f"<{self.remote_target}>"]
        out = Headers([("Via", f"SIP/2.0/{self.via_transport} {self.via_host};branch={branch or new_branch()};rport")])
        for route in routes:
            out.add("Route", route)
        out.add("Max-Forwards", "70")
        out.add("From", f"{self.local_uri};tag={self.local_tag}")
        out.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER"):
            out.add("Contact", self.local_contact)
        for name, value in headers or ():
            out.add(name, value)
        return Request(method, uri, out, body)

    def accept_request(self, request: Request) -> int | None:
        """12.2.2: an out-of-order CSeq gets 500; returns the status to refuse with, or None."""
        number = request.cseq.number
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_cseq is not None and number <= self.remote_cseq:
                return 500
            self.remote_cseq = number
        if request.method == "INVITE" and request.contacts:
            self.remote_target = request.contacts[0].uri  # target refresh
        return None


def _strip_tag(value: str) -> str:
    addr = parse_name_addr(value)
    kept = tuple(p for p in addr.params if p[0].lower() != "tag")
    return str(NameAddr(addr.uri, addr.display, kept))


# ---- session actions (what the I/O layer must do) and events (what the switch hears) ----

@dataclass(frozen=True, slots=True)
class SendRequest:
    """Send in a new client transaction; responses come back through `InviteSession.on_response`."""

    request: Request


@dataclass(frozen=True, slots=True)
class SendAck:
    """An ACK for a 2xx: sent directly by the transport, no transaction (13.2.2.4)."""

    request: Request


@dataclass(frozen=True, slots=True)
class SendResponse:
    request: Request
    response: Response


@dataclass(frozen=True, slots=True)
class Progress:
    status: int
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class Answered:
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class Rejected:
    status: int
    reason: str
    response: Response | None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    by: str  # "local" | "remote"
    reason: str


@dataclass(frozen=True, slots=True)
class MediaUpdated:
    """A re-INVITE or its answer changed the remote SDP (hold, resume, new address)."""

    sdp: bytes


SessionAction = Union[SendRequest, SendAck, SendResponse, Progress, Answered, Rejected, SessionEnded, MediaUpdated]


class Phase(str, Enum):
    IDLE = "idle"
    CALLING = "calling"
    EARLY = "early"
    CANCELLING = "cancelling"
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"
    ENDED = "ended"


AnswerOffer = Callable[[bytes], bytes]


class InviteSession:
    def __init__(self, timers: Timers, local_contact: str, answer_offer: AnswerOffer | None = None,
                 user_agent: str = "dialer") -> None:
        self.t = timers
        self.local_contact = local_contact
        self.answer_offer = answer_offer
        self.user_agent = user_agent
        self.phase = Phase.IDLE
        self.role = "uac"
        self.dialog: Dialog | None = None
        self.invite: Request | None = None
        self.local_sdp: bytes = b""
        self.remote_sdp: bytes | None = None
        self._provisional_seen = False
        self.responded = False  # any response at all to the initial INVITE
        self._cancel_wanted = False
        self._ack: Request | None = None
        self._pending_reinvite: Request | None = None
        self._glare_sdp: bytes | None = None
        self._deadlines: dict[str, float] = {}
        self._ok: Response | None = None
        self._ok_request: Request | None = None
        self._ok_interval = timers.t1
        self.session_expires: int | None = None
        self.refresher: str | None = None  # "uac" | "uas"

    # ---------------- timers ----------------
    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def on_timer(self, now: float) -> list[SessionAction]:
        actions: list[SessionAction] = []
        for name, deadline in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if deadline <= now and self._deadlines.get(name) == deadline:
                del self._deadlines[name]
                actions += self._fire(name, now)
        return actions

    def _fire(self, name: str, now: float) -> list[SessionAction]:
        if name == "2xx" and self._ok is not None and self._ok_request is not None:
            self._ok_interval = min(2 * self._ok_interval, self.t.t2)
            self._deadlines["2xx"] = now + self._ok_interval
            return [SendResponse(self._ok_request, self._ok)]
        if name == "no_ack":
            self._deadlines.pop("2xx", None)
            self._ok = None
            return self._send_bye("no_ack")
        if name == "glare" and self._glare_sdp is not None and self.phase is Phase.CONFIRMED:
            sdp, self._glare_sdp = self._glare_sdp, None
            return self.reinvite(sdp, now)
        if name == "refresh" and self.phase is Phase.CONFIRMED and self._pending_reinvite is None:
            return self.reinvite(self.local_sdp, now)
        if name == "expire" and self.phase is Phase.CONFIRMED:
            return self._send_bye("session_expired")
        return []

    # ---------------- UAC ----------------
    def start_uac(self, invite: Request, now: float) -> list[SessionAction]:
        self.role = "uac"
        self.invite = invite
        self.local_sdp = invite.body
        self.phase = Phase.CALLING
        return [SendRequest(invite)]

    def cancel(self, now: float) -> list[SessionAction]:
        """Give up on an unanswered INVITE. CANCEL waits for a provisional response (9.1)."""
        if self.phase not in (Phase.CALLING, Phase.EARLY):
            return []
        self._cancel_wanted = True
        self.phase = Phase.CANCELLING
        return self._send_cancel() if self._provisional_seen else []

    def _send_cancel(self) -> list[SessionAction]:
        assert self.invite is not None
        invite = self.invite
        headers = Headers([("Via", invite.headers.get("Via", ""))])
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", invite.headers.get("From", ""))
        headers.add("To", invite.headers.get("To", ""))
        headers.add("Call-ID", invite.call_id)
        headers.add("CSeq", f"{invite.cseq.number} CANCEL")
        headers.add("Reason", 'SIP;cause=487;text="ring timeout"')
        return [SendRequest(Request("CANCEL", invite.uri, headers))]

    def on_response(self, request: Request, response: Response, now: float) -> list[SessionAction]:
        """Responses to our INVITE (incl. stray 2xx retransmissions), re-INVITE, BYE, CANCEL."""
        method = request.method
        if method == "INVITE" and self.invite is not None and request.cseq.number == self.invite.cseq.number:
            return self._on_initial_invite_response(response, now)
        if method == "INVITE":
            return self._on_reinvite_response(request, response, now)
        if method == "BYE" and response.status >= 200 and self.phase is Phase.TERMINATING:
            self.phase = Phase.ENDED
            self._deadlines.clear()
        return []

    def _on_initial_invite_response(self, response: Response, now: float) -> list[SessionAction]:
        assert self.invite is not None
        self.responded = True
        status = response.status
        if status < 200:
            if status == 100:
                self._provisional_seen = True
                return self._send_cancel() if self._cancel_wanted else []
            first = not self._provisional_seen
            self._provisional_seen = True
            actions: list[SessionAction] = []
            if first and self._cancel_wanted:
                actions += self._send_cancel()
            if self.phase is Phase.CALLING:
                self.phase = Phase.EARLY
            if self.phase is not Phase.CANCELLING:
                actions.append(Progress(status, response.body or None))
            return actions
        if status >= 300:
            if self.phase in (Phase.CALLING, Phase.EARLY, Phase.CANCELLING):
                self.phase = Phase.ENDED
                self._deadlines.clear()
                return [Rejected(status, response.reason, response)]
            return []
        # 2xx: the first creates the dialog; retransmissions or forks get an ACK (and a fork a BYE)
        if self.phase is Phase.ENDED and self.dialog is None:
            return self._ack_and_bye_fork(response)  # too late: we already reported a failure for this INVITE
        if self.dialog is not None:
            if response.to.tag == self.dialog.remote_tag and self._ack is not None:
                return [SendAck(self._ack)]
            return self._ack_and_bye_fork(response)
        self.dialog = Dialog.as_uac(self.invite, response, self.local_contact)
        self._ack = self.dialog.create_request("ACK", cseq=self.invite.cseq.number)
        self.remote_sdp = response.body or None
        if self.phase is Phase.CANCELLING:
            # our CANCEL crossed the 200: the call is up on the far side, so ACK it and end it (15, 9.1)
            self.phase = Phase.CONFIRMED
            return [SendAck(self._ack), *self._send_bye("cancelled")]
        self.phase = Phase.CONFIRMED
        self._arm_session_timer(response, now, we_are="uac")
        return [SendAck(self._ack), Answered(response.body or None)]

    def _ack_and_bye_fork(self, response: Response) -> list[SessionAction]:
        assert self.invite is not None
        fork = Dialog.as_uac(self.invite, response, self.local_contact)
        ack = fork.create_request("ACK", cseq=self.invite.cseq.number)
        return [SendAck(ack), SendRequest(fork.create_request("BYE"))]

    # ---------------- re-INVITE (hold, resume, session refresh) ----------------
    def reinvite(self, sdp: bytes, now: float) -> list[SessionAction]:
        if self.dialog is None or self.phase is not Phase.CONFIRMED:
            return []
        if self._pending_reinvite is not None:
            self._glare_sdp = sdp
            return []
        self.local_sdp = sdp
        headers = [("Content-Type", "application/sdp"), ("Supported", "timer")]
        if self.session_expires:
            headers.append(("Session-Expires", f"{self.session_expires};refresher={self._our_refresher_label()}"))
        request = self.dialog.create_request("INVITE", body=sdp, headers=headers)
        self._pending_reinvite = request
        return [SendRequest(request)]

    def _our_refresher_label(self) -> str:
        return "uac" if self.refresher == "us" else "uas"  # relative to the re-INVITE, which we send

    def _on_reinvite_response(self, request: Request, response: Response, now: float) -> list[SessionAction]:
        if self.dialog is None or response.status < 200:
            return []
        if self._pending_reinvite is request:
            self._pending_reinvite = None
        if response.status == 491:
            # 14.1: retry after 2.1-4 s if we own the Call-ID (we sent the initial INVITE), else 0-2 s
            delay = random.uniform(2.1, 4.0) if self.role == "uac" else random.uniform(0.0, 2.0)
            self._glare_sdp = request.body
            self._deadlines["glare"] = now + delay
            return []
        if response.status >= 300:
            if response.status in (408, 481):
                return self._send_bye("reinvite_failed")
            return []
        ack = self.dialog.create_request("ACK", cseq=request.cseq.number)
        actions: list[SessionAction] = [SendAck(ack)]
        if response.body and response.body != self.remote_sdp:
            self.remote_sdp = response.body
            actions.append(MediaUpdated(response.body))
        self._arm_session_timer(response, now, we_are="uac")
        return actions

    # ---------------- RFC 4028 session timers ----------------
    def _arm_session_timer(self, response: Response, now: float, we_are: str) -> None:
        """After a 2xx to our (re-)INVITE: refresh at half the interval if we are the refresher, else watch."""
        parsed = _session_expires(response)
        if parsed is None:
            return
        interval, refresher = parsed
        # a 2xx naming no refresher leaves the job to the UAC (RFC 4028 7.2), and the UAC is whoever sent it
        self._schedule_session(interval, refresher in (None, we_are), now)

    def _schedule_session(self, interval: int, ours: bool, now: float) -> None:
        self.session_expires = interval
        self.refresher = "us" if ours else "them"
        self._deadlines.pop("refresh", None)
        self._deadlines.pop("expire", None)
        if ours:
            self._deadlines["refresh"] = now + interval / 2
        else:
            self._deadlines["expire"] = now + interval - min(32, interval / 3)

    def _uas_session_timer_headers(self, request: Request, now: float) -> list[tuple[str, str]] | None:
        """Headers for our 2xx to a request asking for session timers; None means 422 (interval too small)."""
        parsed = _session_expires(request)
        if parsed is None:
            return []
        interval, asked = parsed
        if interval < MIN_SE_S:
            return None
        supported = "timer" in f"{request.headers.get('Supported') or ''},{request.headers.get('Require') or ''}"
        refresher = "uas" if not supported or asked == "uas" else "uac"
        self._schedule_session(interval, refresher == "uas", now)
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if supported:
            headers.append(("Require", "timer"))
        return headers

    # ---------------- UAS ----------------
    def start_uas(self, invite: Request, local_tag: str, via_host: str, via_transport: str) -> None:
        self.role = "uas"
        self.invite = invite
        self.phase = Phase.EARLY
        self.remote_sdp = invite.body or None
        self.dialog = Dialog.as_uas(invite, local_tag, self.local_contact, via_host, via_transport)

    def uas_response(self, status: int, now: float, *, sdp: bytes = b"", reason: str | None = None) -> list[SessionAction]:
        assert self.invite is not None and self.dialog is not None
        headers = [("Contact", self.local_contact), ("Server", self.user_agent)] if status < 300 else []
        if sdp:
            headers.append(("Content-Type", "application/sdp"))
        if 200 <= status < 300:
            timer_headers = self._uas_session_timer_headers(self.invite, now)
            if timer_headers is None:
                return self.uas_response(422, now)
            headers += timer_headers
        if status == 422:
            headers.append(("Min-SE", str(MIN_SE_S)))
        response = make_response(self.invite, status, reason, to_tag=self.dialog.local_tag, headers=headers, body=sdp)
        if 200 <= status < 300:
            self.local_sdp = sdp
            self.phase = Phase.CONFIRMED
            self._ok, self._ok_request, self._ok_interval = response, self.invite, self.t.t1
            self._deadlines["2xx"] = now + self.t.t1
            self._deadlines["no_ack"] = now + 64 * self.t.t1
        elif status >= 300:
            self.phase = Phase.ENDED
        return [SendResponse(self.invite, response)]

    # ---------------- requests inside the dialog (both roles) ----------------
    def on_request(self, request: Request, now: float) -> list[SessionAction]:
        method = request.method
        if method == "ACK":
            if self._ok is not None and request.cseq.number == self._ok_request.cseq.number:  # type: ignore[union-attr]
                self._ok = None
                self._deadlines.pop("2xx", None)
                self._deadlines.pop("no_ack", None)
            if request.body and request.body != self.remote_sdp:
                self.remote_sdp = request.body
                return [MediaUpdated(request.body)]
            return []
        if self.dialog is None:
            return [SendResponse(request, make_response(request, 481))]
        refused = self.dialog.accept_request(request)
        if refused is not None:
            return [SendResponse(request, make_response(request, refused))]
        if method == "BYE":
            self.phase = Phase.ENDED
            self._deadlines.clear()
            return [SendResponse(request, make_response(request, 200)), SessionEnded("remote", "bye")]
        if method == "INVITE":
            return self._on_reinvite(request, now)
        if method == "UPDATE" and request.body:
            return self._on_update_offer(request, now)
        if method in ("UPDATE", "OPTIONS", "INFO", "NOTIFY"):
            headers = self._uas_session_timer_headers(request, now) if method == "UPDATE" else []
            if headers is None:
                return [SendResponse(request, make_response(request, 422, headers=[("Min-SE", str(MIN_SE_S))]))]
            return [SendResponse(request, make_response(request, 200, headers=headers))]
        return [SendResponse(request, make_response(request, 405, headers=[("Allow", ALLOW)]))]

    def _on_reinvite(self, request: Request, now: float) -> list[SessionAction]:
        if self._pending_reinvite is not None or self._ok is not None:
            return [SendResponse(request, make_response(request, 491))]  # glare (14.2)
        offer = request.body
        answer = self.local_sdp
        if offer:
            if self.answer_offer is None:
                return [SendResponse(request, make_response(request, 488))]
            try:
                answer = self.answer_offer(offer)
            except ValueError:
                return [SendResponse(request, make_response(request, 488))]
        timer_headers = self._uas_session_timer_headers(request, now)
        if timer_headers is None:
            return [SendResponse(request, make_response(request, 422, headers=[("Min-SE", str(MIN_SE_S))]))]
        headers = [("Contact", self.local_contact), ("Content-Type", "application/sdp"), *timer_headers]
        response = make_response(request, 200, headers=headers, body=answer)
        self.local_sdp = answer
        self._ok, self._ok_request, self._ok_interval = response, request, self.t.t1
        self._deadlines["2xx"] = now + self.t.t1
        self._deadlines["no_ack"] = now + 64 * self.t.t1
        actions: list[SessionAction] = [SendResponse(request, response)]
        if offer and offer != self.remote_sdp:
            self.remote_sdp = offer
            actions.append(MediaUpdated(offer))
        return actions

    def _on_update_offer(self, request: Request, now: float) -> list[SessionAction]:
        """RFC 3311 5.2: the 2xx to an UPDATE carrying an offer carries the answer; 491 while our offer is out."""
        if self._pending_reinvite is not None:
            return [SendResponse(request, make_response(request, 491))]
        timer_headers = self._uas_session_timer_headers(request, now)
        if timer_headers is None:
            return [SendResponse(request, make_response(request, 422, headers=[("Min-SE", str(MIN_SE_S))]))]
        if self.answer_offer is None:
            return [SendResponse(request, make_response(request, 488))]
        try:
            answer = self.answer_offer(request.body)
        except ValueError:
            return [SendResponse(request, make_response(request, 488))]
        self.local_sdp = answer
        headers = [("Contact", self.local_contact), ("Content-Type", "application/sdp"), *timer_headers]
        response = make_response(request, 200, headers=headers, body=answer)
        actions: list[SessionAction] = [SendResponse(request, response)]
        if request.body != self.remote_sdp:
            self.remote_sdp = request.body
            actions.append(MediaUpdated(request.body))
        return actions

    # ---------------- ending ----------------
    def hangup(self, now: float, reason: str = "normal") -> list[SessionAction]:
        if self.phase in (Phase.CALLING, Phase.EARLY) and self.role == "uac":
            return self.cancel(now)
        if self.phase is Phase.EARLY and self.role == "uas":
            return self.uas_response(480, now)
        if self.phase is Phase.CONFIRMED:
            return self._send_bye(reason)
        return []

    def _send_bye(self, reason: str) -> list[SessionAction]:
        if self.dialog is None or self.phase in (Phase.TERMINATING, Phase.ENDED):
            return []
        self.phase = Phase.TERMINATING
        for name in ("refresh", "expire", "glare"):
            self._deadlines.pop(name, None)
        bye = self.dialog.create_request("BYE", headers=[("Reason", f'SIP;text="{reason}"')])
        return [SendRequest(bye), SessionEnded("local", reason)]


def _session_expires(message: Request | Response) -> tuple[int, str | None] | None:
    value = message.headers.get("Session-Expires")
    if value is None:
        return None
    interval_text, *params = value.split(";")
    if not interval_text.strip().isdigit():
        return None
    refresher = None
    for param in params:
        key, _, param_value = param.partition("=")
        if key.strip().lower() == "refresher":
            refresher = param_value.strip().lower()
    return int(interval_text.strip()), refresher


ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY"
