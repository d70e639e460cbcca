"""RFC 3261 section 17 transactions as sans-I/O state machines (with the RFC 6026 Accepted state).

Each transaction is fed messages (`feed(message, now)`) and timer ticks (`on_timer(now)`) and returns actions for
the I/O layer: `Send` a message, `Deliver` a message to the transaction user, `Timeout`, `Terminated`.
`next_deadline()` says when `on_timer` must be called next. Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Union

from sip.message import Headers, Message, Request, Response

BRANCH_MAGIC = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Address:
    transport: str  # "udp" | "tcp" | "tls"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


@dataclass(frozen=True, slots=True)
class Timers:
    """T1, T2, T4 in seconds (RFC 3261 17.1.1.1, table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @classmethod
    def from_settings(cls, settings) -> Timers:  # type: ignore[no-untyped-def]
        return cls(settings.t1_ms / 1000, settings.t2_ms / 1000, settings.t4_ms / 1000)


@dataclass(frozen=True, slots=True)
class Send:
    message: Message
    destination: Address


@dataclass(frozen=True, slots=True)
class Deliver:
    message: Message
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Timeout:
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Terminated:
    transaction: Transaction


Action = Union[Send, Deliver, Timeout, Terminated]


class State(str, Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def client_key(message: Message) -> tuple[str, str]:
    method = message.cseq.method
    return (message.via.branch or "", "INVITE" if method == "ACK" else method)


def server_key(request: Request) -> tuple[str, str, str]:
    via = request.via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC):
        return (branch, via.sent_by.lower(), method)
    # RFC 2543 peers: no magic cookie, fall back on the dialog-ish tuple (17.2.3)
    return (f"2543:{request.call_id}:{request.from_.tag}:{request.cseq.number}:{request.uri}", via.sent_by, method)


class Transaction:
    def __init__(self, request: Request, remote: Address, timers: Timers) -> None:
        self.request = request
        self.remote = remote
        self.t = timers
        self.state = State.TRYING
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self.last_response: Response | None = None

    @property
    def reliable(self) -> bool:
        return self.remote.reliable

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def _arm(self, name: str, now: float, after: float) -> None:
        self._intervals[name] = after
        self._deadlines[name] = now + after

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _terminate(self) -> list[Action]:
        self.state = State.TERMINATED
        self._deadlines.clear()
        return [Terminated(self)]

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while not self.terminated:
            due = [(deadline, name) for name, deadline in self._deadlines.items() if deadline <= now]
            if not due:
                break
            _, name = min(due)
            del self._deadlines[name]
            actions += self._fire(name, now)
        return actions

    def _fire(self, name: str, now: float) -> list[Action]:
        raise NotImplementedError


class ClientInviteTransaction(Transaction):
    """Figure 5 of RFC 3261 with RFC 6026: 2xx moves to Accepted, where further 2xx still reach the TU."""

    def __init__(self, request: Request, remote: Address, timers: Timers) -> None:
        super().__init__(request, remote, timers)
        self.state = State.CALLING
        self.key = client_key(request)

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._arm("A", now, self.t.t1)
        self._arm("B", now, 64 * self.t.t1)
        return [Send(self.request, self.remote)]

    def build_ack(self, response: Response) -> Request:
        """ACK for a non-2xx final response: same branch and Request-URI, To from the response (17.1.1.3)."""
        headers = Headers([("Via", self.request.headers.get("Via", ""))])
        for name in ("Route",):
            for value in self.request.headers.get_all(name):
                headers.add(name, value)
        headers.add("Max-Forwards", "70")
        headers.add("From", self.request.headers.get("From", ""))
        headers.add("To", response.headers.get("To", ""))
        headers.add("Call-ID", self.request.call_id)
        headers.add("CSeq", f"{self.request.cseq.number} ACK")
        return Request("ACK", self.request.uri, headers)

    def feed(self, response: Response, now: float) -> list[Action]:
        status = response.status
        if self.state in (State.CALLING, State.PROCEEDING):
            self._cancel("A")
            if status < 200:
                self._cancel("B")  # the TU owns the ring timeout from here (it CANCELs)
                self.state = State.PROCEEDING
                return [Deliver(response, self)]
            if status < 300:
                self.state = State.ACCEPTED
                self._cancel("B")
                self._arm("M", now, 64 * self.t.t1)
                return [Deliver(response, self)]
            self.state = State.COMPLETED
            self._cancel("B")
            self._arm("D", now, 0 if self.reliable else 32.0)
            self._ack = self.build_ack(response)
            return [Send(self._ack, self.remote), Deliver(response, self)]
        if self.state is State.ACCEPTED and 200 <= status < 300:
            return [Deliver(response, self)]  # retransmitted 2xx: the dialog re-sends its ACK
        if self.state is State.COMPLETED and status >= 300:
            return [Send(self._ack, self.remote)]
        return []

    def _fire(self, name: str, now: float) -> list[Action]:
        if name == "A" and self.state is State.CALLING:
            self._arm("A", now, 2 * self._intervals["A"])
            return [Send(self.request, self.remote)]
        if name == "B" and self.state is State.CALLING:
            return [Timeout(self), *self._terminate()]
        if name in ("D", "M"):
            return self._terminate()
        return []


class ClientNonInviteTransaction(Transaction):
    """Figure 6 of RFC 3261."""

    def __init__(self, request: Request, remote: Address, timers: Timers) -> None:
        super().__init__(request, remote, timers)
        self.key = client_key(request)

    def start(self, now: float) -> list[Action]:
        if not self.reliable:
            self._arm("E", now, self.t.t1)
        self._arm("F", now, 64 * self.t.t1)
        return [Send(self.request, self.remote)]

    def feed(self, response: Response, now: float) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []
        if response.status < 200:
            self.state = State.PROCEEDING
            return [Deliver(response, self)]
        self.state = State.COMPLETED
        self._cancel("E", "F")
        self._arm("K", now, 0 if self.reliable else self.t.t4)
        return [Deliver(response, self)]

    def _fire(self, name: str, now: float) -> list[Action]:
        if name == "E" and self.state in (State.TRYING, State.PROCEEDING):
            interval = self.t.t2 if self.state is State.PROCEEDING else min(2 * self._intervals["E"], self.t.t2)
            self._arm("E", now, interval)
            return [Send(self.request, self.remote)]
        if name == "F" and self.state in (State.TRYING, State.PROCEEDING):
            return [Timeout(self), *self._terminate()]
        if name == "K":
            return self._terminate()
        return []


class ServerInviteTransaction(Transaction):
    """Figure 7 of RFC 3261 with RFC 6026 (Accepted absorbs INVITE retransmissions after a 2xx)."""

    def __init__(self, request: Request, remote: Address, timers: Timers) -> None:
        super().__init__(request, remote, timers)
        self.state = State.PROCEEDING
        self.key = server_key(request)

    def feed(self, request: Request, now: float) -> list[Action]:
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel("G", "H")
                self._arm("I", now, 0 if self.reliable else self.t.t4)
            elif self.state is State.ACCEPTED:
                return [Deliver(request, self)]  # ACK for our 2xx travels to the dialog
            return []
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Send(self.last_response, self.remote)]
        return []

    def respond(self, response: Response, now: float) -> list[Action]:
        if self.state is not State.PROCEEDING:
            if self.state is State.ACCEPTED and 200 <= response.status < 300:
                return [Send(response, self.remote)]  # the dialog's 2xx retransmission
            return []
        self.last_response = response
        if response.status < 200:
            return [Send(response, self.remote)]
        if response.status < 300:
            self.state = State.ACCEPTED
            self._arm("L", now, 64 * self.t.t1)
            return [Send(response, self.remote)]
        self.state = State.COMPLETED
        if not self.reliable:
            self._arm("G", now, self.t.t1)
        self._arm("H", now, 64 * self.t.t1)
        return [Send(response, self.remote)]

    def _fire(self, name: str, now: float) -> list[Action]:
        if name == "G" and self.state is State.COMPLETED:
            self._arm("G", now, min(2 * self._intervals["G"], self.t.t2))
            return [Send(self.last_response, self.remote)] if self.last_response else []
        if name == "H" and self.state is State.COMPLETED:
            return [Timeout(self), *self._terminate()]  # no ACK came
        if name in ("I", "L"):
            return self._terminate()
        return []


class ServerNonInviteTransaction(Transaction):
    """Figure 8 of RFC 3261."""

    def __init__(self, request: Request, remote: Address, timers: Timers) -> None:
        super().__init__(request, remote, timers)
        self.key = server_key(request)

    def feed(self, request: Request, now: float) -> list[Action]:
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Send(self.last_response, self.remote)]
        return []

    def respond(self, response: Response, now: float) -> list[Action]:
        if self.state in (State.COMPLETED, State.TERMINATED):
            return []
        self.last_response = response
        if response.status < 200:
            self.state = State.PROCEEDING
            return [Send(response, self.remote)]
        self.state = State.COMPLETED
        self._arm("J", now, 0 if self.reliable else 64 * self.t.t1)
        return [Send(response, self.remote)]

    def _fire(self, name: str, now: float) -> list[Action]:
        return self._terminate() if name == "J" else []


ClientTransaction = Union[ClientInviteTransaction, ClientNonInviteTransaction]
ServerTransaction = Union[ServerInviteTransaction, ServerNonInviteTransaction]


class TransactionLayer:
    """All transactions of one endpoint: matching (17.1.3, 17.2.3), creation, timers. Still sans-I/O."""

    def __init__(self, timers: Timers) -> None:
        self.timers = timers
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[str, str, str], ServerTransaction] = {}

    def send_request(self, request: Request, remote: Address, now: float) -> tuple[ClientTransaction, list[Action]]:
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(request, remote, self.timers)
        else:
            tx = ClientNonInviteTransaction(request, remote, self.timers)
        self.clients[tx.key] = tx
        return tx, tx.start(now)

    def find_server(self, request: Request) -> ServerTransaction | None:
        return self.servers.get(server_key(request))

    def receive_response(self, response: Response, now: float) -> tuple[ClientTransaction, list[Action]] | None:
        """The matching client transaction and its actions, or None for a stray response (2xx retransmission)."""
        tx = self.clients.get(client_key(response))
        if tx is None:
            return None
        return tx, self._reap(tx.feed(response, now))

    def receive_request(self, request: Request, remote: Address, now: float) -> tuple[ServerTransaction | None, list[Action], bool]:
        """(transaction, actions, is_new). An ACK to a 2xx has no transaction: (None, [], True)."""
        tx = self.servers.get(server_key(request))
        if tx is not None:
            return tx, self._reap(tx.feed(request, now)), False
        if request.method == "ACK":
            return None, [], True
        new: ServerTransaction
        if request.method == "INVITE":
            new = ServerInviteTransaction(request, remote, self.timers)
        else:
            new = ServerNonInviteTransaction(request, remote, self.timers)
        self.servers[new.key] = new
        return new, [], True

    def respond(self, tx: ServerTransaction, response: Response, now: float) -> list[Action]:
        return self._reap(tx.respond(response, now))

    def next_deadline(self) -> float | None:
        deadlines = [d for tx in (*self.clients.values(), *self.servers.values()) if (d := tx.next_deadline()) is not None]
        return min(deadlines, default=None)

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for tx in [*self.clients.values(), *self.servers.values()]:
            deadline = tx.next_deadline()
            if deadline is not None and deadline <= now:
                actions += tx.on_timer(now)
        return self._reap(actions)

    def _reap(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Terminated):
                tx = action.transaction
                if isinstance(tx, (ClientInviteTransaction, ClientNonInviteTransaction)):
                    self.clients.pop(tx.key, None)
                else:
                    self.servers.pop(tx.key, None)  # type: ignore[arg-type]
        return actions
