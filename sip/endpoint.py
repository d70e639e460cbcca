"""The SIP user agent core: wires transports, the transaction layer, INVITE sessions and request handlers.

This is the only SIP module that schedules timers (loop.call_at, one handle per transaction or session) and
it never awaits inside a message handler, so one slow peer cannot stall the others.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from dataclasses import dataclass, field
from typing import Callable

from sip.dialog import (
    InviteSession, SendAck, SendRequest, SendResponse, SessionAction,
)
from sip.message import Message, Request, Response, make_response
from sip.transaction import (
    Action, Address, Deliver, Send, ServerTransaction, Terminated, Timeout, Timers,
    Transaction, TransactionLayer, new_branch,
)
from sip.transport import LocalEnd, TransportLayer
from sip.uri import SipUri

log = logging.getLogger("sip.endpoint")

RequestHandler = Callable[[Request, ServerTransaction, Address, LocalEnd], None]
SessionListener = Callable[[SessionAction], None]


@dataclass(eq=False)
class SessionHandle:
    session: InviteSession
    destination: Address
    listener: SessionListener
    key: tuple[str, str] = ("", "")
    timer: asyncio.TimerHandle | None = None
    transactions: set[Transaction] = field(default_factory=set)  # client transactions answering to this session


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def uri_address(uri: SipUri, fallback: Address) -> Address:
    """Where to send a request for `uri`: its host if it is an IP literal, else the fallback (a resolved peer)."""
    if not is_ip(uri.host_bare):
        return fallback
    transport = uri.transport if uri.transport in ("udp", "tcp", "tls") else "udp"
    return Address(transport, uri.host_bare, uri.port or (5061 if transport == "tls" else 5060))


class SipEndpoint:
    def __init__(self, timers: Timers, *, user_agent: str = "dialer") -> None:
        self.timers = timers
        self.user_agent = user_agent
        self.layer = TransactionLayer(timers)
        self.transport = TransportLayer(self._on_message, on_send_failure=self._on_send_failure)
        self.loop = asyncio.get_running_loop()
        self.request_handler: RequestHandler | None = None
        self._sessions: dict[tuple[str, str], SessionHandle] = {}
        self._tx_owner: dict[Transaction, Callable[[Response | None], None]] = {}
        self._tx_timer: dict[Transaction, asyncio.TimerHandle] = {}

    @property
    def now(self) -> float:
        return self.loop.time()

    async def start(self, hosts: tuple[str, ...], port: int, transports: tuple[str, ...],
                    udp_buffer_bytes: int = 4 * 1024 * 1024, tls_server: ssl.SSLContext | None = None) -> None:
        await self.transport.start(hosts, port, transports, udp_buffer_bytes, tls_server)

    async def close(self) -> None:
        for handle in [*self._tx_timer.values(), *(h.timer for h in self._sessions.values() if h.timer)]:
            handle.cancel()
        await self.transport.close()

    # ---------------------------------------------------------------- building requests
    def local_for(self, destination: Address) -> LocalEnd:
        return self.transport.local_for(destination)

    def contact_for(self, destination: Address, user: str = "dialer") -> str:
        local = self.local_for(destination)
        transport = "" if local.transport == "udp" else f";transport={local.transport}"
        return f"<sip:{user}@{local.hostport}{transport}>"

    def via_for(self, destination: Address) -> str:
        local = self.local_for(destination)
        return f"SIP/2.0/{local.transport.upper()} {local.hostport};branch={new_branch()};rport"

    # ---------------------------------------------------------------- client transactions
    def send_request(self, request: Request, destination: Address,
                     on_final: Callable[[Response | None], None] | None = None) -> Transaction:
        """Start a client transaction; `on_final(response)` gets every response (None on timeout)."""
        tx, actions = self.layer.send_request(request, destination, self.now)
        if on_final is not None:
            self._tx_owner[tx] = on_final
        self._run(tx, actions)
        return tx

    def request(self, request: Request, destination: Address) -> asyncio.Future[Response | None]:
        """Non-INVITE request; resolves with the final response, or None on timeout (Timer F)."""
        future: asyncio.Future[Response | None] = self.loop.create_future()

        def on_response(response: Response | None) -> None:
            if not future.done() and (response is None or response.status >= 200):
                future.set_result(response)

        self.send_request(request, destination, on_response)
        return future

    def _run(self, tx: Transaction, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.send(action.message, action.destination)
            elif isinstance(action, Deliver):
                owner = self._tx_owner.get(action.transaction)
                if owner is not None and isinstance(action.message, Response):
                    owner(action.message)
            elif isinstance(action, Timeout):
                owner = self._tx_owner.get(action.transaction)
                if owner is not None:
                    owner(None)
            elif isinstance(action, Terminated):
                self._tx_owner.pop(action.transaction, None)
                handle = self._tx_timer.pop(action.transaction, None)
                if handle is not None:
                    handle.cancel()
        if not tx.terminated:
            self._schedule_tx(tx)

    def _schedule_tx(self, tx: Transaction) -> None:
        old = self._tx_timer.pop(tx, None)
        if old is not None:
            old.cancel()
        deadline = tx.next_deadline()
        if deadline is not None:
            self._tx_timer[tx] = self.loop.call_at(deadline, self._tx_fire, tx)

    def _tx_fire(self, tx: Transaction) -> None:
        self._tx_timer.pop(tx, None)
        try:
            actions = tx.on_timer(self.now)
            self.layer._reap(actions)
            self._run(tx, actions)
        except Exception:  # noqa: BLE001
            log.exception("transaction timer failed")

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        if self.user_agent and "Server" not in response.headers:
            response.headers.add("Server", self.user_agent)
        self._run(tx, self.layer.respond(tx, response, self.now))

    # ---------------------------------------------------------------- INVITE sessions
    def open_session(self, session: InviteSession, destination: Address, listener: SessionListener) -> SessionHandle:
        return SessionHandle(session, destination, listener)

    def start_session(self, handle: SessionHandle, invite: Request) -> None:
        handle.key = (invite.call_id, invite.from_.tag or "")
        self._sessions[handle.key] = handle
        self.session_actions(handle, handle.session.start_uac(invite, self.now))

    def accept_session(self, handle: SessionHandle, local_tag: str) -> None:
        assert handle.session.invite is not None
        handle.key = (handle.session.invite.call_id, local_tag)
        self._sessions[handle.key] = handle

    def session_actions(self, handle: SessionHandle, actions: list[SessionAction]) -> None:
        session = handle.session
        for action in actions:
            try:
                if isinstance(action, SendRequest):
                    request = action.request
                    destination = self._session_destination(handle, request)
                    handle.transactions.add(
                        self.send_request(request, destination, self._session_response_handler(handle, request)))
                elif isinstance(action, SendAck):
                    self.transport.send(action.request, self._session_destination(handle, action.request))
                elif isinstance(action, SendResponse):
                    tx = self.layer.find_server(action.request)
                    if tx is not None:
                        self.respond(tx, action.response)
                    else:  # server transaction gone (Timer L): the 2xx retransmission goes straight out
                        self.transport.send(action.response, handle.destination)
                else:
                    handle.listener(action)
            except Exception:  # noqa: BLE001 - a listener bug must not break the call's signalling
                log.exception("session action %r failed", type(action).__name__)
        self._schedule_session(handle)
        if session.phase.value == "ended" and session.next_deadline() is None:
            self._release_session(handle)

    def _session_destination(self, handle: SessionHandle, request: Request) -> Address:
        if request.method in ("INVITE", "CANCEL") and handle.session.dialog is None:
            return handle.destination
        if request.headers.get("Route") or handle.session.dialog is None:
            return handle.destination if not request.routes else uri_address(request.routes[0].uri, handle.destination)
        return uri_address(request.uri, handle.destination)

    def _session_response_handler(self, handle: SessionHandle, request: Request) -> Callable[[Response | None], None]:
        def on_response(response: Response | None) -> None:
            if response is None:
                response = make_response(request, 408, "Transaction Timeout")
            self.session_actions(handle, handle.session.on_response(request, response, self.now))
        return on_response

    def end_session(self, handle: SessionHandle) -> None:
        self._release_session(handle)
        if handle.timer is not None:
            handle.timer.cancel()

    def _release_session(self, handle: SessionHandle) -> None:
        """Drop every reference from live transactions to an ended session. An INVITE client transaction stays
        in Accepted for 64*T1 (RFC 6026); holding the whole call until then makes full GC passes take ~0.5 s
        at 300 calls/s. A 2xx retransmission arriving later finds no owner and no session and is dropped."""
        if self._sessions.get(handle.key) is handle:
            del self._sessions[handle.key]
        for tx in handle.transactions:
            self._tx_owner.pop(tx, None)
        handle.transactions.clear()

    def _schedule_session(self, handle: SessionHandle) -> None:
        if handle.timer is not None:
            handle.timer.cancel()
            handle.timer = None
        deadline = handle.session.next_deadline()
        if deadline is not None:
            handle.timer = self.loop.call_at(deadline, self._session_fire, handle)

    def _session_fire(self, handle: SessionHandle) -> None:
        handle.timer = None
        try:
            self.session_actions(handle, handle.session.on_timer(self.now))
        except Exception:  # noqa: BLE001
            log.exception("session timer failed")

    def _on_send_failure(self, message: Message, destination: Address) -> None:
        """A connection that cannot be opened fails the request's transaction as a 503 would (RFC 3261 8.1.3.1)."""
        if not isinstance(message, Request) or message.method == "ACK":
            return
        self._on_response(make_response(message, 503, "Service Unavailable (transport failure)"))

    # ---------------------------------------------------------------- incoming
    def _on_message(self, message: Message, source: Address, local: LocalEnd) -> None:
        if isinstance(message, Response):
            self._on_response(message)
        else:
            self._on_request(message, source, local)  # type: ignore[arg-type]

    def _on_response(self, response: Response) -> None:
        if len(response.vias) != 1:
            return  # 18.1.2: a response with more than our Via is not for us
        matched = self.layer.receive_response(response, self.now)
        if matched is not None:
            self._run(*matched)
            return
        # no transaction: a 2xx retransmission after the INVITE transaction ended reaches its dialog
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            handle = self._sessions.get((response.call_id, response.from_.tag or ""))
            if handle is not None and handle.session.invite is not None:
                self.session_actions(handle, handle.session.on_response(handle.session.invite, response, self.now))

    def _on_request(self, request: Request, source: Address, local: LocalEnd) -> None:
        tx, actions, is_new = self.layer.receive_request(request, source, self.now)
        if tx is not None and actions:
            self._run(tx, actions)
        if not is_new:
            for action in actions:  # ACK for our 2xx matched an Accepted server transaction
                if isinstance(action, Deliver) and isinstance(action.message, Request):
                    self._to_dialog(action.message, source)
            return
        if request.method == "ACK":
            self._to_dialog(request, source)
            return
        assert tx is not None
        if request.method == "CANCEL":
            self._on_cancel(request, tx)
            return
        if request.to.tag is not None:
            handle = self._sessions.get((request.call_id, request.to.tag))
            if handle is None:
                self.respond(tx, make_response(request, 481))
                return
            self.session_actions(handle, handle.session.on_request(request, self.now))
            return
        if request.method == "INVITE":
            self.respond(tx, make_response(request, 100))
        if self.request_handler is None:
            self.respond(tx, make_response(request, 405 if request.method != "OPTIONS" else 200))
            return
        self.request_handler(request, tx, source, local)

    def _to_dialog(self, request: Request, source: Address) -> None:
        handle = self._sessions.get((request.call_id, request.to.tag or ""))
        if handle is not None:
            self.session_actions(handle, handle.session.on_request(request, self.now))

    def _on_cancel(self, cancel: Request, tx: ServerTransaction) -> None:
        invite_tx = self.layer.servers.get((cancel.via.branch or "", cancel.via.sent_by.lower(), "INVITE"))
        if invite_tx is None:
            self.respond(tx, make_response(cancel, 481))
            return
        self.respond(tx, make_response(cancel, 200))
        for handle in list(self._sessions.values()):
            if handle.session.invite is invite_tx.request and handle.session.role == "uas":
                self.session_actions(handle, handle.session.uas_response(487, self.now))
                return
        self.respond(invite_tx, make_response(invite_tx.request, 487, to_tag="cancelled"))


__all__ = ["SessionHandle", "SipEndpoint", "is_ip", "uri_address"]
