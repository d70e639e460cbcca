"""RFC 3261 section 10 registrar for agents' softphones, with per-agent digest credentials (sans-I/O).

`Registrar.handle(request, source, now)` returns the response to send; `lookup(user, now)` returns the live
bindings (newest first) the switch calls an agent on. `on_change(user, bindings)` is told a user's bindings after
every REGISTER that changed them, and `restore` brings back bindings kept from before a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sip.auth import DigestServer
from sip.errors import SipParseError
from sip.headers import NameAddr
from sip.message import Request, Response, make_response
from sip.transaction import Address


@dataclass(frozen=True, slots=True)
class Binding:
    user: str
    contact: NameAddr
    expires_at: float
    call_id: str
    cseq: int
    source: Address  # where the REGISTER came from: we reach NATed phones there

    def remaining_s(self, now: float) -> int:
        return max(0, int(round(self.expires_at - now)))


class Registrar:
    def __init__(self, realm: str, credentials: dict[str, str], *, default_expires_s: int = 3600,
                 min_expires_s: int = 60, max_expires_s: int = 7200, nonce_ttl_s: float = 300.0,
                 max_contacts: int = 10, algorithms: tuple[str, ...] = ("SHA-256", "MD5")) -> None:
        self.realm = realm
        self.credentials = dict(credentials)
        self.default_expires_s = default_expires_s
        self.min_expires_s = min_expires_s
        self.max_expires_s = max_expires_s
        self.max_contacts = max_contacts
        self.digest = DigestServer(realm, nonce_ttl_s=nonce_ttl_s, algorithms=algorithms)
        self._bindings: dict[str, dict[str, Binding]] = {}
        self.on_change: Callable[[str, list[Binding]], None] | None = None

    def restore(self, bindings: Iterable[Binding]) -> None:
        for binding in bindings:
            self._bindings.setdefault(binding.user, {})[str(binding.contact.uri)] = binding

    def lookup(self, user: str, now: float) -> list[Binding]:
        live = [b for b in self._bindings.get(user, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: b.expires_at, reverse=True)

    def handle(self, request: Request, source: Address, now: float) -> Response:
        try:
            return self._handle(request, source, now)
        except SipParseError as error:
            return make_response(request, 400, error.reason)

    def _handle(self, request: Request, source: Address, now: float) -> Response:
        result = self.digest.verify(request, self.credentials.get, now)
        if not result.ok:
            response = make_response(request, 401, to_tag=_tag(request))
            for value in self.digest.challenges(now, stale=result.stale):
                response.headers.add("WWW-Authenticate", value)
            return response
        user = request.to.uri.user or ""
        if user != result.username:
            return make_response(request, 403, "Authenticated user does not own this address", to_tag=_tag(request))
        contacts = request.contacts
        header_expires = request.expires
        bindings = self._bindings.setdefault(user, {})
        if any(c.wildcard for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return make_response(request, 400, "Wildcard Contact needs Expires: 0", to_tag=_tag(request))
            bindings.clear()
            self._changed(user)
            return self._ok(request, user, now)
        changes: list[tuple[str, Binding | None]] = []
        for contact in contacts:
            expires_param = contact.param("expires")
            expires = header_expires if header_expires is not None else self.default_expires_s
            if expires_param is not None:
                if not expires_param.isdigit():
                    return make_response(request, 400, "Bad expires parameter", to_tag=_tag(request))
                expires = int(expires_param)
            if 0 < expires < self.min_expires_s:
                response = make_response(request, 423, to_tag=_tag(request))
                response.headers.add("Min-Expires", str(self.min_expires_s))
                return response
            key = str(contact.uri)
            existing = bindings.get(key)
            if existing and existing.call_id == request.call_id and request.cseq.number <= existing.cseq:
                return make_response(request, 500, "Out of order REGISTER", to_tag=_tag(request))
            if expires == 0:
                changes.append((key, None))
            else:
                expires = min(expires, self.max_expires_s)
                bare = NameAddr(contact.uri, contact.display,
                                tuple(p for p in contact.params if p[0].lower() != "expires"))
                changes.append((key, Binding(user, bare, now + expires, request.call_id, request.cseq.number, source)))
        for key, binding in changes:
            if binding is None:
                bindings.pop(key, None)
            else:
                bindings[key] = binding
        while len(bindings) > self.max_contacts:
            oldest = min(bindings.values(), key=lambda b: b.expires_at)
            del bindings[str(oldest.contact.uri)]
        self._changed(user)
        return self._ok(request, user, now)

    def _changed(self, user: str) -> None:
        if self.on_change is not None:
            self.on_change(user, list(self._bindings.get(user, {}).values()))

    def _ok(self, request: Request, user: str, now: float) -> Response:
        response = make_response(request, 200, to_tag=_tag(request))
        for binding in self.lookup(user, now):
            response.headers.add("Contact", f"{binding.contact};expires={binding.remaining_s(now)}")
        return response


def _tag(request: Request) -> str:
    """A stable To tag per registration Call-ID, so retransmitted REGISTERs get the same answer."""
    return "r" + hashlib.sha1(request.call_id.encode()).hexdigest()[:10]
