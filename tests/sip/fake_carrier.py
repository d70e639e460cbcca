"""An in-process SIP peer built on our own endpoint, for tests that need to see inside the carrier."""

from __future__ import annotations

from sip.auth import DigestServer
from sip.dialog import InviteSession, new_tag
from sip.endpoint import SipEndpoint
from sip.message import Request, make_response


def answer_sdp(port: int) -> bytes:
    return (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % port)


class Carrier:
    """A SIP peer on our own endpoint: challenges INVITE with 407 and REGISTER with 401, answers OPTIONS."""

    def __init__(self, endpoint: SipEndpoint, password: str = "pw") -> None:
        self.endpoint = endpoint
        self.digest = DigestServer("carrier", algorithms=("SHA-256", "MD5"))
        self.password = password
        self.seen: list[Request] = []
        self.silent = False
        self.challenge_invites = True
        self.session_events: list[object] = []
        self.rtp_ports: dict[str, int] = {}  # callee user -> the RTP port its SDP answer names
        endpoint.request_handler = self.handle

    def handle(self, request: Request, tx, source, local) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(request)
        if self.silent:
            return
        now = self.endpoint.now
        if request.method == "OPTIONS":
            self.endpoint.respond(tx, make_response(request, 200, to_tag="c"))
        elif request.method == "REGISTER":
            if self.digest.verify(request, {"trunkuser": self.password}.get, now).ok:
                ok = make_response(request, 200, to_tag="c")
                ok.headers.add("Contact", f"{request.headers.get('Contact')};expires=90")
                self.endpoint.respond(tx, ok)
            else:
                challenge = make_response(request, 401, to_tag="c")
                for value in self.digest.challenges(now):
                    challenge.headers.add("WWW-Authenticate", value)
                self.endpoint.respond(tx, challenge)
        elif request.method == "INVITE":
            authorised = self.digest.verify(request, {"trunkuser": self.password}.get, now, "Proxy-Authorization").ok
            if authorised or not self.challenge_invites:
                self._answer(request, source, local)
            else:
                challenge = make_response(request, 407, to_tag="c")
                for value in self.digest.challenges(now):
                    challenge.headers.add("Proxy-Authenticate", value)
                self.endpoint.respond(tx, challenge)

    def _answer(self, request: Request, source, local) -> None:  # type: ignore[no-untyped-def]
        """Answer as a real UAS dialog (our own InviteSession), so re-INVITEs and BYEs in it are handled."""
        body = answer_sdp(self.rtp_ports.get(request.uri.user or "", 39990))
        session = InviteSession(self.endpoint.timers, f"<sip:callee@{local.hostport}>", answer_offer=lambda _: body)
        tag = new_tag()
        session.start_uas(request, tag, local.hostport, "UDP")
        handle = self.endpoint.open_session(session, source, self.session_events.append)
        self.endpoint.accept_session(handle, tag)
        self.endpoint.session_actions(handle, session.uas_response(200, self.endpoint.now, sdp=body))
