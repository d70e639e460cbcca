"""The API the engine awaits: place calls on trunks, call agents, bridge, play, hang up (interfaces.md).

A `Call` is one SIP leg with its media leg. Its life is told by events, in order: Ringing / EarlyMedia (any number),
then exactly one of Answered or Failed, and after Answered exactly one Ended. Read them with
`async for event in call.events()` or set `call.on_event`. Nothing here blocks the loop: file reads for
announcements run in a thread, everything else is callbacks and timers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable, Mapping, Sequence, Union

from sip.auth import authorization_for
from sip.dialog import (
    Answered as SessionAnswered, InviteSession, MediaUpdated, Progress, Rejected, SessionAction, SessionEnded,
    new_call_id, new_tag,
)
from sip.endpoint import SessionHandle, SipEndpoint, uri_address
from sip.media.announcement import Announcement
from sip.media.engine import MediaEngine, MediaLeg, MediaQuality
from sip.media.ports import PortsExhausted
from sip.media.sdp import SdpError, SdpNegotiationError
from sip.message import Request, make_response
from sip.registrar import Binding, Registrar
from sip.registrations import RegistrationStore, StoredBinding
from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.transaction import Address, ServerTransaction, Timers
from sip.transport import LocalEnd
from sip.trunk import FAILOVER_STATUSES, TokenBucket, TrunkRuntime, TrunkState, outcome_for
from sip.uri import parse_uri

log = logging.getLogger("sip.switch")
SILENT_TRUNK = "no response from the trunk"
AGENTS_PEER = "agents"  # what on_media_ended names the agents' phones, beside the trunks


# ------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class Ringing:
    call_id: str


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    call_id: str


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: str


@dataclass(frozen=True, slots=True)
class Failed:
    call_id: str
    sip_code: int
    outcome: str  # busy | no_answer | invalid | rejected | congestion | failed
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Ended:
    call_id: str
    by: str  # "local" | "remote"
    reason: str


CallEvent = Union[Ringing, EarlyMedia, Answered, Failed, Ended]


class SwitchError(RuntimeError):
    """A request the switch cannot carry out (unknown trunk or agent, call not up, ...)."""


@dataclass(frozen=True, slots=True)
class AgentCredentials:
    id: str
    uri: str | None = None
    username: str | None = None
    password: str | None = None


class Call:
    def __init__(self, switch: Switch, call_id: str, kind: str, leg: MediaLeg) -> None:
        self.switch = switch
        self.call_id = call_id
        self.kind = kind  # "callee" | "agent"
        self.leg = leg
        self.state = "dialing"  # dialing, ringing, early, answered, ended, failed
        self.trunk: str | None = None
        self.sip_code: int | None = None
        self.on_event: Callable[[CallEvent], None] | None = None
        self.handle: SessionHandle | None = None
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._ring_timer: asyncio.TimerHandle | None = None
        self._cancel_reason = "failed"
        self._media_answered = False
        self._local_hangup_reason: str | None = None
        self.done = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"<Call {self.kind} {self.call_id} {self.state}>"

    @property
    def finished(self) -> bool:
        return self.state in ("ended", "failed")

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, (Failed, Ended)):
                return

    def _emit(self, event: CallEvent) -> None:
        self._queue.put_nowait(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - the engine's callback must not break signalling
                log.exception("call event callback failed")
        if isinstance(event, (Failed, Ended)) and not self.done.done():
            self.done.set_result(event)


class Switch:
    def __init__(self, sip: SipSettings, rtp: RtpSettings, endpoint: SipEndpoint, media: MediaEngine,
                 trunks: Sequence[TrunkSettings], agents: Iterable[AgentCredentials]) -> None:
        self.sip = sip
        self.rtp = rtp
        self.endpoint = endpoint
        self.media = media
        self.timers = Timers.from_settings(sip)
        self.trunks = {t.name: TrunkState(t) for t in trunks}
        self.runtimes = {name: TrunkRuntime(state, endpoint) for name, state in self.trunks.items()}
        self._buckets = {t.name: TokenBucket(t.max_cps) for t in trunks}
        self.agents = {a.id: a for a in agents}
        self.registrar = Registrar(
            sip.realm, {a.username: a.password for a in self.agents.values() if a.username and a.password},
            default_expires_s=sip.register_default_expires_s, min_expires_s=sip.register_min_expires_s,
            max_expires_s=sip.register_max_expires_s, nonce_ttl_s=sip.nonce_ttl_s, algorithms=sip.digest_algorithms)
        self.calls: dict[str, Call] = {}
        self._announcements: dict[tuple[Path, str], Announcement] = {}
        self.on_provisional_response: Callable[[str, int], None] | None = None  # (trunk name, status): for metrics
        # (trunk name, or "agents" for agents' phones; the leg's quality) when a call that received RTP ends
        self.on_media_ended: Callable[[str, MediaQuality], None] | None = None
        self._registrations: RegistrationStore | None = None
        endpoint.request_handler = self._on_request

    @classmethod
    async def start(cls, sip: SipSettings, rtp: RtpSettings, trunks: Sequence[TrunkSettings],
                    agents_credentials: Iterable[AgentCredentials] | Mapping[str, object] = (),
                    registrations: RegistrationStore | None = None) -> Switch:
        """`registrations`: where registrar bindings are kept across restarts (None: in memory only)."""
        endpoint = SipEndpoint(Timers.from_settings(sip), user_agent=sip.user_agent)
        if "tls" in {t.transport for t in trunks}:
            context = ssl.create_default_context(cafile=sip.tls_ca_file)
            if not sip.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            endpoint.transport.tls_context = context
        transports = tuple(t for t in sip.transports if t != "tls")
        await endpoint.start((sip.bind_host, *sip.extra_bind_hosts), sip.port, transports, sip.udp_buffer_bytes)
        switch = cls(sip, rtp, endpoint, MediaEngine(rtp), trunks, _agents(agents_credentials))
        if registrations is not None:
            switch._keep_registrations(registrations)
        for runtime in switch.runtimes.values():
            await runtime.start()
        return switch

    def _keep_registrations(self, store: RegistrationStore) -> None:
        """Bindings from before a restart come back; every change is written through. The registrar counts on the
        loop's clock, the store in Unix time."""
        self._registrations = store
        unix_offset = time.time() - self.endpoint.now
        self.registrar.restore(b.binding(unix_offset) for b in store.load(time.time()))

        def write_through(user: str, bindings: list[Binding]) -> None:
            offset = time.time() - self.endpoint.now
            store.replace(user, [StoredBinding.of(b, offset) for b in bindings])

        self.registrar.on_change = write_through

    def local_port(self, transport: str = "udp") -> int:
        return next(local.port for (kind, _), local in self.endpoint.transport.locals.items() if kind == transport)

    # ------------------------------------------------------------------ originate
    async def originate(self, trunk: str | Sequence[str], number: str, caller_id: str,
                        headers: Mapping[str, str] | None = None, ring_timeout_s: float = 30.0) -> Call:
        """Send the INVITE on the first trunk of `trunk` (a name or names in failover order) with a free channel;
        on 503, 408 or no answer at all, the next trunk is tried. Returns once the INVITE is sent."""
        names = [trunk] if isinstance(trunk, str) else list(trunk)
        for name in names:
            if name not in self.trunks:
                raise SwitchError(f"unknown trunk {name!r}; known: {sorted(self.trunks)}")
        leg = await self._allocate_leg(f"callee-{number[-4:]}")
        call = Call(self, new_call_id(self._call_id_host()), "callee", leg)
        self.calls[call.call_id] = call
        leg.on_inactivity = lambda _leg: asyncio.ensure_future(self.hangup(call, "rtp_timeout"))
        attempt = _Attempt(names, number, caller_id, dict(headers or {}), ring_timeout_s)
        await self._try_next_trunk(call, attempt)
        return call

    async def _allocate_leg(self, label: str) -> MediaLeg:
        try:
            return await self.media.allocate_leg(label)
        except PortsExhausted as error:
            raise SwitchError(f"no RTP port free for a new call: {error}") from error

    def _call_id_host(self) -> str:
        return self.sip.bind_host if ":" not in self.sip.bind_host else "dialer"

    async def _try_next_trunk(self, call: Call, attempt: _Attempt, last_status: int = 503,
                              last_reason: str = "no trunk could take the call") -> None:
        while attempt.remaining:
            state = self.trunks[attempt.remaining.pop(0)]
            if not self._can_take(state):
                continue
            wait = self._buckets[state.name].take(self.endpoint.now)
            if wait > 0:
                await asyncio.sleep(wait)
            if call.finished:
                return
            if call._local_hangup_reason is not None:
                self._fail_hung_up_before_invite(call)
                return
            state.channels_in_use += 1
            attempt.channel = state
            call.trunk = state.name
            self._send_invite(call, state, attempt)
            self._watch_for_silence(call, state, attempt)
            return
        silent = last_reason == SILENT_TRUNK
        self._fail(call, last_status, last_reason, "congestion" if silent or last_status == 503 else None)

    def _send_invite(self, call: Call, state: TrunkState, attempt: _Attempt) -> None:
        assert state.address is not None
        destination = state.address
        offer = call.leg.make_offer().encode()
        call._media_answered = False  # a new trunk answers the new offer (early media of a failed one is void)
        sip_call_id = call.call_id if attempt.tries == 0 else new_call_id(self._call_id_host())
        attempt.tries += 1
        identity = state.identity_headers(attempt.caller_id)
        to = f"<{state.request_uri(attempt.number)}>"
        headers = [("Via", self.endpoint.via_for(destination)), ("Max-Forwards", "70"), identity[0], ("To", to),
                   ("Call-ID", sip_call_id), ("CSeq", f"{attempt.cseq} INVITE"),
                   ("Contact", self.endpoint.contact_for(destination)), *identity[1:],
                   ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"), ("Supported", "timer"),
                   ("User-Agent", self.sip.user_agent), *attempt.headers.items(),
                   ("Content-Type", "application/sdp")]
        invite = Request("INVITE", state.request_uri(attempt.number), headers, offer)
        self._start_session(call, invite, destination, attempt, state)

    def _start_session(self, call: Call, invite: Request, destination: Address, attempt: _Attempt | None,
                       state: TrunkState | None) -> None:
        contact = invite.headers.get("Contact", "")
        session = InviteSession(self.timers, contact, answer_offer=lambda offer: call.leg.answer(offer).encode(),
                                user_agent=self.sip.user_agent)
        handle = self.endpoint.open_session(
            session, destination, lambda action: self._on_session(call, handle, action, attempt, state))
        call.handle = handle
        self.endpoint.start_session(handle, invite)
        if call._ring_timer is None and attempt is not None:
            call._ring_timer = asyncio.get_running_loop().call_later(
                attempt.ring_timeout_s, self._ring_timeout, call)

    def _watch_for_silence(self, call: Call, state: TrunkState, attempt: _Attempt) -> None:
        """A trunk that sends nothing at all (not even 100 Trying) in `failover_timeout_s` is skipped: waiting for
        Timer B (32 s) would outlast the ring timeout and the next trunk would never be tried."""
        handle = call.handle

        def check() -> None:
            if handle is None or call.handle is not handle or call.finished or handle.session.responded:
                return
            if not any(self._can_take(self.trunks[name]) for name in attempt.remaining):
                return  # nowhere better to go: keep waiting (Timer B, ring timeout) rather than give up
            if state.up:
                log.warning("trunk %s: no response to INVITE in %.1f s; marked down, failing over", state.name,
                            state.settings.failover_timeout_s)
            state.up = False  # OPTIONS brings it back
            # a provisional arriving later makes the session CANCEL, a late 2xx gets ACK and BYE
            self.endpoint.session_actions(handle, handle.session.cancel(self.endpoint.now))
            self._release_channel(attempt)
            asyncio.ensure_future(self._try_next_trunk(call, attempt, 408, SILENT_TRUNK))

        asyncio.get_running_loop().call_later(state.settings.failover_timeout_s, check)

    @staticmethod
    def _can_take(state: TrunkState) -> bool:
        return state.up and state.address is not None and state.has_channel()

    def _release_channel(self, attempt: _Attempt | None) -> None:
        if attempt is not None and attempt.channel is not None:
            attempt.channel.channels_in_use -= 1
            attempt.channel = None

    def _ring_timeout(self, call: Call) -> None:
        call._ring_timer = None
        if call.state in ("dialing", "ringing", "early") and call.handle is not None:
            call._cancel_reason = "no_answer"
            self.endpoint.session_actions(call.handle, call.handle.session.cancel(self.endpoint.now))

    def _on_session(self, call: Call, handle: SessionHandle, action: SessionAction, attempt: _Attempt | None,
                    state: TrunkState | None) -> None:
        if call.handle is not handle or call.finished:
            return  # an earlier attempt (challenged or failed over) still finishing, or a late message
        if isinstance(action, Progress):
            if state is not None and self.on_provisional_response is not None:
                self.on_provisional_response(state.name, action.status)
            if action.sdp and not call._media_answered:
                self._apply_answer(call, action.sdp)
            if call.state in ("dialing", "ringing", "early"):
                early = action.sdp is not None
                if early and call.state != "early":
                    call.state = "early"
                    call._emit(EarlyMedia(call.call_id))
                elif not early and call.state == "dialing":
                    call.state = "ringing"
                    call._emit(Ringing(call.call_id))
        elif isinstance(action, SessionAnswered):
            if action.sdp and not call._media_answered:
                self._apply_answer(call, action.sdp)
            self._cancel_ring_timer(call)
            call.state = "answered"
            call.sip_code = 200
            call._emit(Answered(call.call_id))
        elif isinstance(action, Rejected):
            self._on_rejected(call, handle, action, attempt, state)
        elif isinstance(action, SessionEnded):
            self._release_channel(attempt)
            self._on_session_ended(call, action)
        elif isinstance(action, MediaUpdated) and handle.session.role == "uac" and handle.session._pending_reinvite is None:
            try:
                call.leg.apply_answer(action.sdp)
            except (SdpError, SdpNegotiationError, ValueError) as error:
                log.info("call %s: unusable SDP in re-INVITE answer: %s", call.call_id, error)

    def _apply_answer(self, call: Call, sdp: bytes) -> None:
        try:
            call.leg.apply_answer(sdp)
            call._media_answered = True
        except (SdpError, SdpNegotiationError, ValueError) as error:
            log.warning("call %s: unusable SDP answer: %s", call.call_id, error)

    def _on_rejected(self, call: Call, handle: SessionHandle, action: Rejected, attempt: _Attempt | None,
                     state: TrunkState | None) -> None:
        status = action.status
        trunk = state.settings if state is not None else None
        if (status in (401, 407) and attempt is not None and state is not None and trunk is not None
                and trunk.username and not attempt.authenticated and action.response is not None
                and handle.session.invite is not None and call.state != "failed"
                and call._local_hangup_reason is None):
            authorization = authorization_for(action.response, handle.session.invite, trunk.username,
                                              trunk.password or "")
            if authorization is not None:
                attempt.authenticated = True
                attempt.cseq += 1
                self._resend_invite_with_auth(call, handle, state, attempt, authorization)
                return
        self._release_channel(attempt)
        if (status in FAILOVER_STATUSES and attempt is not None and attempt.remaining
                and call._cancel_reason != "no_answer" and call._local_hangup_reason is None):
            if status == 408 and state is not None:
                state.up = False  # no answer at all from this trunk: skip it until OPTIONS says otherwise
            asyncio.ensure_future(self._try_next_trunk(call, attempt, status, action.reason))
            return
        outcome = "no_answer" if status == 487 and call._cancel_reason == "no_answer" else outcome_for(status)
        if status == 487 and call._cancel_reason != "no_answer":
            outcome = "failed"
        self._fail(call, status, action.reason, outcome)

    def _resend_invite_with_auth(self, call: Call, handle: SessionHandle, state: TrunkState, attempt: _Attempt,
                                 authorization: tuple[str, str]) -> None:
        old = handle.session.invite
        assert old is not None and state.address is not None
        invite = Request("INVITE", old.uri, old.headers.copy(), old.body)
        invite.headers.set("Via", self.endpoint.via_for(state.address))
        invite.headers.set("CSeq", f"{attempt.cseq} INVITE")
        invite.headers.set(authorization[0], authorization[1])
        self.endpoint.end_session(handle)
        self._start_session(call, invite, state.address, attempt, state)

    def _on_session_ended(self, call: Call, action: SessionEnded) -> None:
        if call.state == "answered":
            call.state = "ended"
            reason = call._local_hangup_reason or action.reason
            self._release(call)
            call._emit(Ended(call.call_id, action.by, reason))
        elif action.reason == "cancelled":  # 200 crossed our CANCEL: it was ACKed and BYEd
            outcome = "no_answer" if call._cancel_reason == "no_answer" else "failed"
            self._fail(call, 487, "answered after cancel", outcome)

    def _fail_hung_up_before_invite(self, call: Call) -> None:
        outcome = "no_answer" if call._local_hangup_reason == "ring_timeout" else "failed"
        self._fail(call, 487, f"hung up before an INVITE was out ({call._local_hangup_reason})", outcome)

    def _fail(self, call: Call, status: int, reason: str = "", outcome: str | None = None) -> None:
        if call.finished:
            return
        self._cancel_ring_timer(call)
        call.state = "failed"
        call.sip_code = status
        self._release(call)
        call._emit(Failed(call.call_id, status, outcome or outcome_for(status), reason))

    def _cancel_ring_timer(self, call: Call) -> None:
        if call._ring_timer is not None:
            call._ring_timer.cancel()
            call._ring_timer = None

    def _release(self, call: Call) -> None:
        if self.on_media_ended is not None and call.leg.stats.packets_in and not call.leg.released:
            self.on_media_ended(AGENTS_PEER if call.kind == "agent" else call.trunk or "", call.leg.quality())
        self.media.release(call.leg)
        self.calls.pop(call.call_id, None)

    # ------------------------------------------------------------------ agents
    async def call_agent(self, uri_or_agent_id: str, ring_timeout_s: float | None = None) -> Call:
        """Call an agent's phone: a SIP URI, an agent id with a configured URI, or a registered agent."""
        target, destination = self._agent_target(uri_or_agent_id)
        leg = await self._allocate_leg(f"agent-{uri_or_agent_id}")
        call = Call(self, new_call_id(self._call_id_host()), "agent", leg)
        self.calls[call.call_id] = call
        leg.on_inactivity = lambda _leg: asyncio.ensure_future(self.hangup(call, "rtp_timeout"))
        offer = leg.make_offer().encode()
        invite = Request("INVITE", target, [
            ("Via", self.endpoint.via_for(destination)), ("Max-Forwards", "70"),
            ("From", f'"Dialer" <sip:dialer@{self.endpoint.local_for(destination).hostport}>;tag={new_tag()}'),
            ("To", f"<{target}>"), ("Call-ID", call.call_id), ("CSeq", "1 INVITE"),
            ("Contact", self.endpoint.contact_for(destination)), ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"),
            ("Supported", "timer"), ("User-Agent", self.sip.user_agent), ("Content-Type", "application/sdp"),
        ], offer)
        attempt = _Attempt([], "", "", {}, ring_timeout_s or self.sip.agent_ring_timeout_s)
        self._start_session(call, invite, destination, attempt, None)
        return call

    def _agent_target(self, uri_or_agent_id: str) -> tuple[str, Address]:
        agent = self.agents.get(uri_or_agent_id)
        uri_text = uri_or_agent_id if agent is None else agent.uri
        if uri_text:
            uri = parse_uri(uri_text)
            fallback = Address(uri.transport, uri.host_bare, uri.port or 5060)
            return str(uri), uri_address(uri, fallback)
        if agent is None or not agent.username:
            raise SwitchError(f"unknown agent {uri_or_agent_id!r}: give a SIP URI or a configured agent id")
        bindings = self.registrar.lookup(agent.username, self.endpoint.now)
        if not bindings:
            raise SwitchError(f"agent {agent.id!r} is not registered")
        binding = bindings[0]
        if self.sip.agents_behind_nat:
            return str(binding.contact.uri), binding.source  # where the REGISTER came from, through the NAT
        uri = binding.contact.uri
        return str(uri), uri_address(uri, binding.source)

    # ------------------------------------------------------------------ media operations
    async def bridge(self, a: Call, b: Call, recording_path: Path | None = None) -> None:
        """Relay audio between two answered calls; `a` is recorded on channel 0 (callee), `b` on channel 1."""
        for call in (a, b):
            if call.state != "answered":
                raise SwitchError(f"{call!r} is not answered")
        self.media.bridge(a.leg, b.leg, recording_path)

    async def unbridge(self, a: Call, b: Call) -> None:
        bridge = a.leg.bridge
        if bridge is None or bridge is not b.leg.bridge:
            raise SwitchError(f"{a!r} and {b!r} are not bridged together")
        self.media.unbridge(bridge)
        await bridge.wait_closed()

    async def play(self, call: Call, announcement_path: Path) -> None:
        """Play a WAV file on an answered (or early-media) call; returns when it has been sent."""
        if call.finished or call.leg.negotiated is None:
            raise SwitchError(f"{call!r} has no media to play on")
        codec = call.leg.negotiated.codec
        key = (Path(announcement_path), codec)
        announcement = self._announcements.get(key)
        if announcement is None:
            loop = asyncio.get_running_loop()
            announcement = await loop.run_in_executor(None, Announcement.load, key[0], codec, self.rtp.ptime_ms)
            self._announcements[key] = announcement
        await self.media.play(call.leg, announcement)

    async def hold(self, call: Call) -> None:
        await self._reoffer(call, "sendonly")

    async def resume(self, call: Call) -> None:
        await self._reoffer(call, "sendrecv")

    async def _reoffer(self, call: Call, direction: str) -> None:
        if call.state != "answered" or call.handle is None:
            raise SwitchError(f"{call!r} is not answered")
        offer = call.leg.make_offer(direction).encode()  # type: ignore[arg-type]
        self.endpoint.session_actions(call.handle, call.handle.session.reinvite(offer, self.endpoint.now))

    async def hangup(self, call: Call, reason: str = "normal") -> None:
        """BYE an answered call, CANCEL a ringing one. Returns at once; the call's last event follows."""
        if call.finished:
            return
        call._local_hangup_reason = reason
        if call.handle is None or call.handle.session.phase.value == "ended":
            self._fail_hung_up_before_invite(call)  # waiting for a cps slot or between two trunks
            return
        if call.state in ("dialing", "ringing", "early"):
            call._cancel_reason = "no_answer" if reason == "ring_timeout" else "failed"
        self.endpoint.session_actions(call.handle, call.handle.session.hangup(self.endpoint.now, reason))

    async def stop(self) -> None:
        """Hang up every call, give BYE/CANCEL a moment to be answered, close sockets and media."""
        for call in list(self.calls.values()):
            await self.hangup(call, "shutdown")
        pending = [c.done for c in list(self.calls.values()) if not c.done.done()]
        if pending and self.sip.stop_grace_s > 0:
            await asyncio.wait(pending, timeout=self.sip.stop_grace_s)
        for runtime in self.runtimes.values():
            await runtime.stop()
        for call in list(self.calls.values()):
            self._release(call)
        await self.media.close()
        await self.endpoint.close()
        if self._registrations is not None:
            self._registrations.close()

    # ------------------------------------------------------------------ requests outside dialogs
    def _on_request(self, request: Request, tx: ServerTransaction, source: Address, local: LocalEnd) -> None:
        if request.method == "REGISTER":
            self.endpoint.respond(tx, self.registrar.handle(request, source, self.endpoint.now))
        elif request.method == "OPTIONS":
            self.endpoint.respond(tx, make_response(request, 200, to_tag=new_tag(), headers=[
                ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REGISTER"), ("Accept", "application/sdp")]))
        elif request.method == "INVITE":
            self.endpoint.respond(tx, make_response(request, 403, "Inbound calls are not accepted", to_tag=new_tag()))
        else:
            self.endpoint.respond(tx, make_response(request, 405, headers=[("Allow", "OPTIONS, REGISTER")]))


@dataclass(slots=True)
class _Attempt:
    remaining: list[str]
    number: str
    caller_id: str
    headers: dict[str, str]
    ring_timeout_s: float
    tries: int = 0
    cseq: int = 1
    authenticated: bool = False
    channel: TrunkState | None = None  # the trunk whose channel this call holds


def _agents(value: Iterable[AgentCredentials] | Mapping[str, object]) -> list[AgentCredentials]:
    """Accept AgentCredentials, config AgentSettings (id/uri/username/password) or {agent_id: password}."""
    if isinstance(value, Mapping):
        return [AgentCredentials(agent_id, None, agent_id, str(password)) for agent_id, password in value.items()]
    out = []
    for agent in value:
        out.append(agent if isinstance(agent, AgentCredentials) else AgentCredentials(
            agent.id, getattr(agent, "uri", None), getattr(agent, "username", None), getattr(agent, "password", None)))
    return out


__all__ = ["AgentCredentials", "Answered", "Call", "CallEvent", "EarlyMedia", "Ended", "Failed", "Ringing", "Switch",
           "SwitchError"]
