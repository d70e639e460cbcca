"""SIP URIs (RFC 3261 section 19.1): parse, compare the parts we route on, and build."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sip.errors import SipParseError

_PORT = re.compile(r"\d{1,5}")
_HOST = re.compile(r"[A-Za-z0-9._\-]+")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_WHITESPACE = re.compile(r"\s")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str | None = None
    opaque: str | None = None  # everything after 'scheme:' for schemes we only carry, never route on

    def param(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.params:
            if key.lower() == lowered:
                return value if value is not None else ""
        return None

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    @property
    def transport(self) -> str:
        return (self.param("transport") or ("tls" if self.scheme == "sips" else "udp")).lower()

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets, as socket calls want it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def with_params(self, **params: str | None) -> SipUri:
        kept = tuple(p for p in self.params if p[0].lower() not in {k.lower() for k in params})
        return replace(self, params=kept + tuple(params.items()))

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return f"tel:{self.user}" + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += [":", self.password]
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += [":", str(self.port)]
        for key, value in self.params:
            parts += [";", key] if value is None else [";", key, "=", value]
        if self.headers:
            parts += ["?", self.headers]
        return "".join(parts)


def format_host(host: str) -> str:
    """Bracket a bare IPv6 address for use in a URI or Via."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not _IPV6.fullmatch(text[: end + 1]):
            raise SipParseError(f"bad IPv6 reference {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if _ else ""
        if not _HOST.fullmatch(host):
            raise SipParseError(f"bad host {host!r}")
    if not rest:
        return host, None
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        raise SipParseError(f"bad port in {text!r}")
    return host, int(rest[1:])


def parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """';a=b;c' -> (('a','b'),('c',None)). Whitespace around = and ; is LWS and ignored."""
    params: list[tuple[str, str | None]] = []
    for chunk in text.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        key, eq, value = chunk.partition("=")
        key = key.strip()
        if not key:
            raise SipParseError(f"empty parameter name in {text!r}")
        params.append((key, value.strip() if eq else None))
    return tuple(params)


def parse_uri(text: str) -> SipUri:
    """sip:, sips: and tel: URIs are parsed; any other well-formed scheme is carried opaque (RFC 3261 19.1)."""
    scheme, colon, rest = text.partition(":")
    if not colon or not rest or not _SCHEME.fullmatch(scheme):
        raise SipParseError(f"malformed URI {text!r}")
    if _WHITESPACE.search(text):
        raise SipParseError(f"whitespace inside URI {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips", "tel"):
        return SipUri(scheme=scheme, host="", opaque=rest)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return SipUri(scheme=scheme, host="", user=number, params=parse_params(params))
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, has_password, password_text = userinfo.partition(":")
        password = password_text if has_password else None
        if not user:
            raise SipParseError(f"empty user part in {text!r}")
    rest, _, headers = rest.partition("?")
    hostport, _, params = rest.partition(";")
    host, port = parse_hostport(hostport)
    return SipUri(scheme, host, user, password, port, parse_params(params), headers or None)
