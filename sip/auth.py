"""HTTP Digest for SIP (RFC 3261 22, RFC 2617, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth, nc/cnonce.

Client side: `authorization_for(challenge_response, request, username, password)` gives the header to retry with.
Server side: `DigestServer` issues stateless, expiring nonces (HMAC of their issue time) and verifies credentials,
refusing replayed nonce counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.headers import split_list, unquote
from sip.message import Request, Response

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """'Digest a=b, c="d"' -> ('Digest', {'a': 'b', 'c': 'd'}); names are lower-cased."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for item in split_list(rest):
        key, eq, raw = item.partition("=")
        if not eq:
            raise SipParseError(f"bad auth parameter {item!r}")
        params[key.strip().lower()] = unquote(raw.strip())
    return scheme, params


def parse_challenge(value: str) -> Challenge:
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest" or "nonce" not in params or "realm" not in params:
        raise SipParseError(f"not a Digest challenge: {value!r}")
    qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(params["realm"], params["nonce"], params.get("algorithm", "MD5").upper(), qop,
                     params.get("opaque"), params.get("stale", "").lower() == "true")


def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    if base not in ALGORITHMS:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}")
    return ALGORITHMS[base](text.encode()).hexdigest()


def compute_response(*, algorithm: str, username: str, realm: str, password: str, nonce: str, method: str,
                     uri: str, qop: str | None, nc: str | None, cnonce: str | None) -> str:
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


def best_challenge(response: Response) -> tuple[str, Challenge] | None:
    """(header name to answer with, challenge); SHA-256 preferred over MD5 when both are offered (RFC 8760)."""
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
    challenges = []
    for value in [v for n, v in response.headers if n == name]:
        try:
            challenge = parse_challenge(value)
        except SipParseError:
            continue
        if challenge.algorithm.removesuffix("-SESS") in ALGORITHMS:
            challenges.append(challenge)
    if not challenges:
        return None
    challenges.sort(key=lambda c: 0 if c.algorithm.startswith("SHA-256") else 1)
    return answer, challenges[0]


def authorization_for(response: Response, request: Request, username: str, password: str, *, nc: int = 1,
                      cnonce: str | None = None) -> tuple[str, str] | None:
    """The (header, value) answering a 401/407 to `request`, or None when no usable challenge is there."""
    found = best_challenge(response)
    if found is None:
        return None
    header, challenge = found
    qop = "auth" if "auth" in challenge.qop else None
    if challenge.qop and qop is None:
        return None  # only auth-int offered; we do not sign bodies
    cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    uri = str(request.uri)
    digest = compute_response(algorithm=challenge.algorithm, username=username, realm=challenge.realm,
                              password=password, nonce=challenge.nonce, method=request.method, uri=uri,
                              qop=qop, nc=nc_text, cnonce=cnonce)
    parts = [f'Digest username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"',
             f'uri="{uri}"', f'response="{digest}"', f"algorithm={challenge.algorithm}"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return header, ", ".join(parts)


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


class DigestServer:
    """Challenges and verifies requests for one realm. Nonces expire after `nonce_ttl_s`; nc must grow."""

    def __init__(self, realm: str, *, nonce_ttl_s: float = 300.0, algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
                 secret: bytes | None = None) -> None:
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.algorithms = algorithms
        self._secret = secret or secrets.token_bytes(32)
        self._last_nc: dict[str, int] = {}

    def _make_nonce(self, now: float) -> str:
        stamp = struct.pack(">d", now)
        mac = hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_issued_at(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]):
            return None
        return struct.unpack(">d", stamp)[0]  # type: ignore[no-any-return]

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        nonce = self._make_nonce(now)
        stale_text = ", stale=true" if stale else ""
        return [f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"{stale_text}'
                for algorithm in self.algorithms]

    def verify(self, request: Request, password_of, now: float, header: str = "Authorization") -> AuthResult:  # type: ignore[no-untyped-def]
        value = request.headers.get(header)
        if value is None:
            return AuthResult(False, reason="no credentials")
        try:
            scheme, params = parse_auth_params(value)
        except SipParseError as error:
            return AuthResult(False, reason=error.reason)
        username = params.get("username")
        nonce = params.get("nonce", "")
        if scheme.lower() != "digest" or not username or params.get("realm") != self.realm:
            return AuthResult(False, username, reason="wrong scheme or realm")
        password = password_of(username)
        issued = self._nonce_issued_at(nonce)
        if password is None or issued is None:
            return AuthResult(False, username, reason="unknown user or forged nonce")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            return AuthResult(False, username, reason=f"algorithm {algorithm} not offered")
        qop = params.get("qop")
        nc_text = params.get("nc")
        try:
            expected = compute_response(algorithm=algorithm, username=username, realm=self.realm, password=password,
                                        nonce=nonce, method=request.method, uri=params.get("uri", ""), qop=qop,
                                        nc=nc_text, cnonce=params.get("cnonce"))
        except SipParseError as error:
            return AuthResult(False, username, reason=error.reason)
        if not hmac.compare_digest(expected, params.get("response", "")):
            return AuthResult(False, username, reason="wrong password")
        if now - issued > self.nonce_ttl_s:
            return AuthResult(False, username, stale=True, reason="nonce expired")
        if qop:
            try:
                nc = int(nc_text or "", 16)
            except ValueError:
                return AuthResult(False, username, reason="bad nc")
            if nc <= self._last_nc.get(nonce, 0):
                return AuthResult(False, username, reason="replayed nonce count")
            self._forget_old(now)
            self._last_nc[nonce] = nc
        return AuthResult(True, username)

    def _forget_old(self, now: float) -> None:
        if len(self._last_nc) < 10000:
            return
        for nonce in list(self._last_nc):
            issued = self._nonce_issued_at(nonce)
            if issued is None or now - issued > self.nonce_ttl_s:
                del self._last_nc[nonce]
