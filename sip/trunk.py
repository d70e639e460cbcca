"""Carrier trunks: call admission (channels, calls per second), health (OPTIONS), outbound registration,
caller-ID presentation, and the SIP response -> outcome mapping the engine and the ledger use.

The admission and outcome rules are pure; `TrunkRuntime` adds the asyncio loops (OPTIONS, REGISTER refresh).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from sip.auth import authorization_for
from sip.dialog import new_call_id, new_tag
from sip.endpoint import SipEndpoint, is_ip
from sip.message import Request, Response
from sip.settings import TrunkSettings
from sip.transaction import Address
from sip.uri import format_host, parse_hostport

log = logging.getLogger("sip.trunk")

OUTCOMES = ("answered", "busy", "no_answer", "invalid", "rejected", "congestion", "failed")
FAILOVER_STATUSES = frozenset({408, 503})  # and no answer at all (Timer B), which reaches us as 408


def outcome_for(status: int) -> str:
    """interfaces.md: answered; busy (486, 600); no_answer (408, 480, our CANCEL: 487); invalid (404, 484, 604);
    rejected (603); congestion (503 and other 5xx); failed (anything else)."""
    if 200 <= status < 300:
        return "answered"
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no_answer"
    if status in (404, 484, 604):
        return "invalid"
    if status == 603:
        return "rejected"
    if 500 <= status < 600:
        return "congestion"
    return "failed"


class TokenBucket:
    """Calls-per-second limit: `rate` tokens a second, bursts up to `burst`. Pure: time is passed in."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, now: float) -> float:
        """Take one token; returns 0.0, or how long to wait before the call may go (the token is reserved)."""
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(slots=True)
class TrunkState:
    settings: TrunkSettings
    address: Address | None = None  # resolved next hop (outbound proxy or host)
    up: bool = True
    channels_in_use: int = 0
    registered_until: float = 0.0

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def domain(self) -> str:
        return self.settings.domain or self.settings.host

    @property
    def from_domain(self) -> str:
        return self.settings.from_domain or self.domain

    def has_channel(self) -> bool:
        return self.channels_in_use < self.settings.max_channels

    def request_uri(self, number: str) -> str:
        user_phone = ";user=phone" if self.settings.user_phone and number.lstrip("+").isdigit() else ""
        transport = f";transport={self.settings.transport}" if self.settings.transport != "udp" else ""
        port = f":{self.settings.port}" if not self.settings.outbound_proxy and self.settings.port != 5060 else ""
        return f"sip:{number}@{format_host(self.domain)}{port}{user_phone}{transport}"

    def identity_headers(self, caller_id: str, display: str | None = None) -> list[tuple[str, str]]:
        """From (possibly anonymous), P-Asserted-Identity and Privacy for the caller ID (RFC 3323, 3325)."""
        user_phone = ";user=phone" if self.settings.user_phone and caller_id.lstrip("+").isdigit() else ""
        identity = f"<sip:{caller_id}@{format_host(self.from_domain)}{user_phone}>"
        name = f'"{display}" ' if display else ""
        if self.settings.anonymous_from:
            from_value = '"Anonymous" <sip:anonymous@anonymous.invalid>'
        else:
            from_value = f"{name}{identity}"
        headers = [("From", f"{from_value};tag={new_tag()}")]
        if self.settings.p_asserted_identity:
            headers.append(("P-Asserted-Identity", f"{name}{identity}"))
        if self.settings.privacy:
            headers.append(("Privacy", self.settings.privacy))
        return headers


async def resolve(host: str, port: int, transport: str) -> Address:
    if is_ip(host):
        return Address(transport, host.strip("[]"), port)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    return Address(transport, infos[0][4][0], port)


def next_hop(settings: TrunkSettings) -> tuple[str, int]:
    """Where the trunk's requests go: the outbound proxy ('host', 'host:port', '[v6]:port') or the host."""
    if settings.outbound_proxy:
        host, port = parse_hostport(settings.outbound_proxy)
        return host.strip("[]"), port or 5060
    return settings.host, settings.port


class TrunkRuntime:
    """The asyncio side of one trunk: resolving, OPTIONS health checks, registration and its refresh."""

    def __init__(self, state: TrunkState, endpoint: SipEndpoint) -> None:
        self.state = state
        self.endpoint = endpoint
        self._tasks: list[asyncio.Task[None]] = []
        self._register_call_id = new_call_id("dialer")
        self._register_cseq = 0
        self.registered = asyncio.Event()

    async def start(self) -> None:
        settings = self.state.settings
        host, port = next_hop(settings)
        try:
            self.state.address = await resolve(host, port, settings.transport)
        except OSError as error:
            log.warning("trunk %s: cannot resolve %s (%s); marked down", settings.name, host, error)
            self.state.up = False
            return
        if settings.options_enabled:
            self._tasks.append(asyncio.create_task(self._health_loop(), name=f"options-{settings.name}"))
        if settings.register_enabled:
            self._tasks.append(asyncio.create_task(self._register_loop(), name=f"register-{settings.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.state.settings.register_enabled and self.state.registered_until > self.endpoint.now:
            try:
                await asyncio.wait_for(self.register_once(expires=0), 2.0)
            except (asyncio.TimeoutError, OSError):
                pass

    def _base_request(self, method: str, uri: str, to_user: str | None, cseq: int, call_id: str,
                      extra: list[tuple[str, str]]) -> Request:
        assert self.state.address is not None
        destination = self.state.address
        user = self.state.settings.username or "dialer"
        aor = f"<sip:{to_user or user}@{format_host(self.state.domain)}>"
        return Request(method, uri, [
            ("Via", self.endpoint.via_for(destination)), ("Max-Forwards", "70"),
            ("From", f"{aor};tag={new_tag()}"), ("To", aor), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
            ("Contact", self.endpoint.contact_for(destination, user)), ("User-Agent", self.endpoint.user_agent), *extra,
        ])

    async def options_once(self) -> Response | None:
        assert self.state.address is not None
        request = self._base_request("OPTIONS", f"sip:{format_host(self.state.domain)}", "ping", 1,
                                     new_call_id("dialer"), [("Accept", "application/sdp")])
        return await self.endpoint.request(request, self.state.address)

    async def _health_loop(self) -> None:
        while True:
            response = await self.options_once()
            up = response is not None and response.status != 503
            if up != self.state.up:
                log.warning("trunk %s is %s", self.state.name, "up" if up else "down")
            self.state.up = up
            await asyncio.sleep(self.state.settings.options_interval_s)

    async def register_once(self, expires: int | None = None) -> Response | None:
        """REGISTER (answering one digest challenge); updates `registered_until`. Returns the final response."""
        settings = self.state.settings
        assert self.state.address is not None
        expires = settings.register_expires_s if expires is None else expires
        uri = f"sip:{format_host(self.state.domain)}"
        response: Response | None = None
        authorization: tuple[str, str] | None = None
        for _ in range(2):
            self._register_cseq += 1
            extra = [("Expires", str(expires))] + ([authorization] if authorization else [])
            request = self._base_request("REGISTER", uri, None, self._register_cseq, self._register_call_id, extra)
            response = await self.endpoint.request(request, self.state.address)
            if response is None or response.status not in (401, 407) or not settings.username:
                break
            authorization = authorization_for(response, request, settings.username, settings.password or "")
            if authorization is None:
                break
        if response is not None and 200 <= response.status < 300:
            granted = _granted_expires(response, expires)
            self.state.registered_until = self.endpoint.now + granted
            if granted:
                self.registered.set()
        return response

    async def _register_loop(self) -> None:
        settings = self.state.settings
        while True:
            response = await self.register_once()
            if response is not None and 200 <= response.status < 300:
                await asyncio.sleep(refresh_delay(self.state.registered_until - self.endpoint.now))
            else:
                log.warning("trunk %s: registration failed (%s)", settings.name,
                            "timeout" if response is None else response.status)
                await asyncio.sleep(settings.register_retry_s)


def refresh_delay(remaining_s: float) -> float:
    """Re-register at half the granted lifetime, and never later than 30 s before it runs out."""
    return max(1.0, min(remaining_s / 2, remaining_s - 30))


def _granted_expires(response: Response, asked: int) -> int:
    for contact in response.contacts:
        value = contact.param("expires")
        if value and value.isdigit():
            return int(value)
    return response.expires if response.expires is not None else asked
