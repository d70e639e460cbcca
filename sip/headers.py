"""Header field values (RFC 3261 section 20, 25.1): names, comma lists, name-addr, Via, CSeq."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from sip.errors import SipParseError
from sip.uri import SipUri, parse_hostport, parse_params, parse_uri

COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "f": "From", "t": "To", "v": "Via", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
    "u": "Allow-Events", "r": "Refer-To", "b": "Referred-By", "x": "Session-Expires",
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
    "n": "Identity-Info",
}
_CANONICAL = {name.lower(): name for name in (
    "Call-ID", "CSeq", "WWW-Authenticate", "Proxy-Authenticate", "Authorization", "Proxy-Authorization",
    "Max-Forwards", "Content-Length", "Content-Type", "Record-Route", "Min-Expires", "Min-SE",
    "Session-Expires", "P-Asserted-Identity", "P-Preferred-Identity", "Retry-After", "User-Agent",
    "Allow-Events", "Content-Encoding", "Content-Disposition", "Accept-Encoding", "Accept-Language",
    "Proxy-Require", "Alert-Info", "Call-Info", "Error-Info", "Reply-To", "In-Reply-To", "MIME-Version",
    "Refer-To", "Referred-By", "Authentication-Info", "RSeq", "RAck", "Subscription-State",
    "Identity-Info", "Accept-Contact", "Reject-Contact", "Request-Disposition",
    *COMPACT_FORMS.values(),
)}
# Headers whose grammar is a comma-separated list, so several values may share one line (RFC 3261 7.3.1).
LIST_HEADERS = frozenset({
    "via", "contact", "route", "record-route", "allow", "supported", "require", "proxy-require",
    "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "content-encoding",
    "p-asserted-identity", "in-reply-to", "alert-info", "call-info", "error-info",
})
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_VIA = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+([^\s;]+(?:\s*:\s*\d+)?)\s*(;.*)?", re.S)


@functools.lru_cache(maxsize=4096)
def canonical_name(name: str) -> str:
    lowered = name.lower()
    lowered = COMPACT_FORMS.get(lowered, lowered).lower()
    if lowered in _CANONICAL:
        return _CANONICAL[lowered]
    return "-".join(part.capitalize() for part in lowered.split("-"))


def is_token(text: str) -> bool:
    return bool(_TOKEN.fullmatch(text))


def split_list(value: str) -> list[str]:
    """Split a comma list, ignoring commas inside quoted strings and <...> (URIs may hold commas)."""
    if "," not in value and '"' not in value:
        stripped = value.strip()
        return [stripped] if stripped else []
    items: list[str] = []
    start = 0
    in_quotes = in_angle = False
    i = 0
    while i < len(value):
        char = value[i]
        if in_quotes:
            if char == "\\":
                i += 1
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == "," and not in_angle:
            items.append(value[start:i].strip())
            start = i + 1
        i += 1
    if in_quotes:
        raise SipParseError(f"unterminated quoted string in {value!r}")
    items.append(value[start:].strip())
    return [item for item in items if item]


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Return (the quoted string with its quotes, index after it); text[start] is the opening quote."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return text[start : i + 1], i + 1
        i += 1
    raise SipParseError(f"unterminated quoted string in {text!r}")


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_header_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """Parameters after a header value; quoted values may hold ';'."""
    params: list[tuple[str, str | None]] = []
    i = 0
    while i < len(text):
        if text[i] in "; \t\r\n":
            i += 1
            continue
        match = re.compile(r"\s*([^=;\s]+)\s*(=\s*)?").match(text, i)
        if not match:
            raise SipParseError(f"bad parameter in {text!r}")
        key = match.group(1)
        if not is_token(key):
            raise SipParseError(f"bad parameter name {key!r}")
        i = match.end()
        value: str | None = None
        if match.group(2) is not None:
            if i < len(text) and text[i] == '"':
                value, i = _read_quoted(text, i)
            else:
                end = text.find(";", i)
                end = len(text) if end < 0 else end
                value = text[i:end].strip()
                i = end
                if not value or any(c.isspace() for c in value):
                    raise SipParseError(f"bad value for parameter {key!r} in {text!r}")
        params.append((key, value))
    return tuple(params)


def _param(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return "" if value is None else value
    return None


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route, P-Asserted-Identity: [display] <uri> ;params."""

    uri: SipUri
    display: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    wildcard: bool = False

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def with_param(self, name: str, value: str | None) -> NameAddr:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=kept + ((name, value),))

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        display = f"{quote(self.display)} " if self.display is not None else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddr:
    text = text.strip()
    if text == "*":
        return NameAddr(uri=SipUri("sip", "*"), wildcard=True)
    display: str | None = None
    if text.startswith('"'):
        quoted, end = _read_quoted(text, 0)
        display = unquote(quoted)
        rest = text[end:].lstrip()
        if not rest.startswith("<"):
            raise SipParseError(f"display name without <uri> in {text!r}")
    else:
        angle = text.find("<")
        rest = text
        if angle >= 0:
            words = text[:angle].split()
            if any(not is_token(word) for word in words):
                raise SipParseError(f"bad display name in {text!r}")
            display = " ".join(words) or None
            rest = text[angle:]
    if rest.startswith("<"):
        close = rest.find(">")
        if close < 0:
            raise SipParseError(f"unclosed <uri> in {text!r}")
        uri = parse_uri(rest[1:close])
        params = parse_header_params(rest[close + 1 :])
    else:
        # addr-spec form: parameters after ';' belong to the header, not the URI (RFC 3261 20.10).
        # The addr-spec may not hold ',', '?' or ';' unbracketed.
        uri_text, _, params_text = rest.partition(";")
        uri = parse_uri(uri_text.strip())
        if uri.headers is not None:
            raise SipParseError(f"URI with headers must be in <> in {text!r}")
        params = parse_header_params(params_text)
    return NameAddr(uri=uri, display=display, params=params)


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    def with_param(self, name: str, value: str | None) -> Via:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=kept + ((name, value),))

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport.upper()} {self.sent_by}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    match = _VIA.fullmatch(text.strip())
    if not match:
        raise SipParseError(f"bad Via {text!r}")
    host, port = parse_hostport(re.sub(r"\s+", "", match.group(2)))
    params = parse_header_params(match.group(3) or "")
    for key, value in params:
        if key.lower() == "branch" and not value:
            raise SipParseError(f"empty branch in Via {text!r}")
    return Via(match.group(1).upper(), host, port, params)


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or not is_token(parts[1]):
        raise SipParseError(f"bad CSeq {text!r}")
    number = int(parts[0])
    if number >= 2**31:
        raise SipParseError(f"CSeq number out of range in {text!r}")
    return CSeq(number, parts[1])


def parse_uint(text: str, name: str, maximum: int) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > maximum:
        raise SipParseError(f"bad {name} {text!r}")
    return int(text)


__all__ = [
    "COMPACT_FORMS", "LIST_HEADERS", "CSeq", "NameAddr", "Via", "canonical_name", "format_params", "is_token",
    "parse_cseq", "parse_header_params", "parse_name_addr", "parse_params", "parse_uint", "parse_via", "quote",
    "split_list", "unquote",
]
