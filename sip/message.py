"""SIP messages (RFC 3261 sections 7, 20, 25): parse from bytes, build to bytes.

`parse_message` takes one datagram (or one framed stream message) and returns a `Request` or `Response`, or raises
`SipParseError`. `StreamParser` frames messages on TCP/TLS by Content-Length. Headers are kept in arrival order with
their original values; typed views (via, from_, to, cseq, ...) are parsed on first use and validated up front for
the headers every transaction depends on, so a malformed message is refused before any layer acts on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from sip.errors import SipParseError
from sip.headers import (
    LIST_HEADERS, CSeq, NameAddr, Via, canonical_name, is_token, parse_cseq, parse_name_addr, parse_uint,
    parse_via, split_list,
)
from sip.uri import SipUri, parse_uri

SIP_VERSION = "SIP/2.0"
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
_FOLD = re.compile(r"\r?\n[ \t]+")
_HEADER_LINE = re.compile(r"([^\s:]+)[ \t]*:[ \t]*(.*)", re.S)
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
    420: "Bad Extension", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    416: "Unsupported URI Scheme", 488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


class Headers:
    """Ordered, case-insensitive header fields; compact names are stored in their long form."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in fields]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = canonical_name(name)
        for field_name, value in self._fields:
            if field_name == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of the header; list-valued headers are split at top-level commas."""
        wanted = canonical_name(name)
        values = [value for field_name, value in self._fields if field_name == wanted]
        if wanted.lower() in LIST_HEADERS:
            return [item for value in values for item in split_list(value)]
        return values

    def add(self, name: str, value: str) -> None:
        self._fields.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._fields.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` by one value, keeping the first one's position."""
        wanted = canonical_name(name)
        for index, (field_name, _) in enumerate(self._fields):
            if field_name == wanted:
                self._fields[index] = (wanted, value)
                self._fields = [f for i, f in enumerate(self._fields) if i <= index or f[0] != wanted]
                return
        self._fields.append((wanted, value))

    def remove(self, name: str) -> None:
        wanted = canonical_name(name)
        self._fields = [f for f in self._fields if f[0] != wanted]

    def copy(self) -> Headers:
        copied = Headers()
        copied._fields = list(self._fields)
        return copied


class Message:
    __slots__ = ("headers", "body", "_cache")

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body
        self._cache: dict[str, object] = {}

    def _cached(self, key: str, build):  # type: ignore[no-untyped-def]
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def invalidate(self) -> None:
        self._cache.clear()

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID").strip()

    @property
    def cseq(self) -> CSeq:
        return self._cached("cseq", lambda: parse_cseq(self._required("CSeq")))  # type: ignore[no-any-return]

    @property
    def vias(self) -> list[Via]:
        return self._cached("via", lambda: [parse_via(v) for v in self.headers.get_all("Via")])  # type: ignore

    @property
    def via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        return self._cached("from", lambda: parse_name_addr(self._required("From")))  # type: ignore

    @property
    def to(self) -> NameAddr:
        return self._cached("to", lambda: parse_name_addr(self._required("To")))  # type: ignore

    @property
    def contacts(self) -> list[NameAddr]:
        return self._cached("contact", lambda: [parse_name_addr(v) for v in self.headers.get_all("Contact")])  # type: ignore

    @property
    def record_routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.get_all("Record-Route")]

    @property
    def routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.get_all("Route")]

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return None if value is None else parse_uint(value, "Content-Length", MAX_BODY_BYTES)

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        return None if value is None else min(parse_uint(value, "Expires", 10**12), 2**32 - 1)

    def _header_bytes(self) -> list[str]:
        lines = [f"{name}: {value}" for name, value in self.headers if name != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return lines

    def validate(self) -> None:
        """Parse the headers every layer relies on, so errors surface at the transport, not deep inside."""
        for name in _REQUIRED:
            self._required(name)
        seen: set[str] = set()
        for name, _ in self.headers:
            if name in _SINGLE:
                if name in seen:
                    raise SipParseError(f"{name} appears more than once")
                seen.add(name)
        _ = (self.cseq, self.vias, self.from_, self.to, self.contacts, self.content_length, self.expires)
        if "Max-Forwards" in self.headers:
            parse_uint(self.headers.get("Max-Forwards", ""), "Max-Forwards", 255)


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: SipUri | str, headers=None, body: bytes = b"") -> None:  # type: ignore[no-untyped-def]
        super().__init__(headers, body)
        self.method = method
        self.uri = uri if isinstance(uri, SipUri) else parse_uri(uri)

    def to_bytes(self) -> bytes:
        lines = [f"{self.method} {self.uri} {SIP_VERSION}", *self._header_bytes(), "", ""]
        return "\r\n".join(lines).encode() + self.body

    def validate(self) -> None:
        super().validate()
        if self.uri.scheme not in ("sip", "sips", "tel"):
            raise SipParseError(f"unsupported URI scheme in Request-URI: {self.uri.scheme}", 416)
        if self.uri.headers is not None:
            raise SipParseError(f"Request-URI may not carry headers: {self.uri}")
        if self.cseq.method != self.method:
            raise SipParseError(f"CSeq method {self.cseq.method!r} does not match request method {self.method!r}")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str | None = None, headers=None, body: bytes = b"") -> None:  # type: ignore[no-untyped-def]
        super().__init__(headers, body)
        self.status = status
        self.reason = REASONS.get(status, "Unknown") if reason is None else reason

    def to_bytes(self) -> bytes:
        lines = [f"{SIP_VERSION} {self.status} {self.reason}", *self._header_bytes(), "", ""]
        return "\r\n".join(lines).encode() + self.body

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


@dataclass(frozen=True, slots=True)
class RawHead:
    """What could be read of a message that failed to parse: enough to answer it with 400 if it is a request."""

    is_request: bool
    method: str | None
    headers: Headers


def _split_head(data: bytes) -> tuple[str, bytes]:
    end = data.find(b"\r\n\r\n")
    separator = 4
    if end < 0:
        end = data.find(b"\n\n")
        separator = 2
    if end < 0:
        raise SipParseError("no empty line after the header section")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        head = data[:end].decode("latin-1")
    return head, data[end + separator :]


def _header_lines(head: str) -> tuple[str, list[tuple[str, str]]]:
    head = _FOLD.sub(" ", head.lstrip("\r\n"))
    lines = head.split("\n")
    start = lines[0].rstrip("\r")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        line = line.rstrip("\r")
        match = _HEADER_LINE.fullmatch(line)
        if not match or not is_token(match.group(1)):
            raise SipParseError(f"malformed header line {line[:80]!r}")
        fields.append((match.group(1), match.group(2).strip()))
    return start, fields


def _parse_start(start: str) -> tuple[str, str | int, str]:
    """('request', method, uri) or ('response', status, reason)."""
    if start.startswith("SIP/"):
        match = re.fullmatch(r"(SIP/\d+\.\d+) (\d{3}) (.*)", start, re.S) or re.fullmatch(r"(SIP/\d+\.\d+) (\d{3})", start)
        if not match:
            raise SipParseError(f"malformed status line {start[:80]!r}")
        if match.group(1) != SIP_VERSION:
            raise SipParseError(f"unsupported version in {start[:80]!r}", 505)
        status = int(match.group(2))
        if not 100 <= status <= 699:
            raise SipParseError(f"status code out of range in {start[:80]!r}")
        return "response", status, match.group(3) if match.lastindex and match.lastindex >= 3 else ""
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"malformed request line {start[:80]!r}")
    method, uri, version = parts
    if not is_token(method):
        raise SipParseError(f"bad method in {start[:80]!r}")
    if version != SIP_VERSION:
        raise SipParseError(f"unsupported version in {start[:80]!r}", 505 if version.startswith("SIP/") else 400)
    return "request", method, uri


def read_raw_head(data: bytes) -> RawHead | None:
    """Best-effort view of a broken message (for answering 400/505); None when nothing usable is there."""
    try:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = _FOLD.sub(" ", head).split("\n")
        start = lines[0].strip()
        headers = Headers()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon and is_token(name.strip()):
                headers.add(name.strip(), value.strip())
        is_request = not start.startswith("SIP/")
        method = start.split(" ", 1)[0] if is_request else None
        return RawHead(is_request, method, headers)
    except Exception:  # noqa: BLE001 - this is the last-resort reader of garbage
        return None


def parse_message(data: bytes, *, datagram: bool = True) -> Request | Response:
    """Parse one message. On a datagram, the body is cut to Content-Length (RFC 3261 18.3)."""
    head, body = _split_head(data)
    start, fields = _header_lines(head)
    kind, second, third = _parse_start(start)
    headers = Headers(fields)
    length_text = headers.get("Content-Length")
    if length_text is not None:
        length = parse_uint(length_text, "Content-Length", MAX_BODY_BYTES)
        if length > len(body):
            raise SipParseError(f"Content-Length {length} exceeds the {len(body)} bytes of body received")
        body = body[:length]
    elif not datagram:
        raise SipParseError("Content-Length is required on stream transports")
    message: Request | Response
    if kind == "response":
        message = Response(int(second), str(third), headers, body)
    else:
        message = Request(str(second), parse_uri(str(third)), headers, body)
    message.validate()
    return message


class StreamParser:
    """Incremental framing of SIP over TCP/TLS: feed bytes, get whole messages (or the errors met)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Request | Response | SipParseError]:
        self._buffer += data
        out: list[Request | Response | SipParseError] = []
        while True:
            while self._buffer[:2] == b"\r\n":  # RFC 5626 keep-alive pings
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    self._buffer.clear()
                    out.append(SipParseError("header section too large"))
                return out
            head = bytes(self._buffer[:end])
            match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", head)
            length = int(match.group(1)) if match else 0
            if length > MAX_BODY_BYTES:
                self._buffer.clear()
                out.append(SipParseError("body too large"))
                return out
            total = end + 4 + length
            if len(self._buffer) < total:
                return out
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            try:
                out.append(parse_message(frame, datagram=False))
            except SipParseError as error:
                error.raw = frame  # type: ignore[attr-defined]
                out.append(error)


def error_response_for(data: bytes, error: SipParseError) -> Response | None:
    """The 400/416/505 answer to a malformed request, or None when it cannot be answered: responses and ACKs are
    never answered, and without Via and CSeq the sender could not match the answer (RFC 3261 8.2.6, 18.2.2)."""
    raw = read_raw_head(data)
    if raw is None or not raw.is_request or raw.method == "ACK":
        return None
    if raw.headers.get("Via") is None or raw.headers.get("CSeq") is None:
        return None
    headers = Headers()
    for name in _REQUIRED:
        for value in [v for n, v in raw.headers if n == canonical_name(name)]:
            headers.add(name, value)
    reason = re.sub(r"[\r\n]+", " ", error.reason)[:120]
    return Response(error.status, reason, headers)


def make_response(request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None,
                  headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Response:
    """A response copying Via, From, To (adding our tag), Call-ID, CSeq and, for dialogs, Record-Route (8.2.6)."""
    out = Headers()
    for value in [v for n, v in request.headers if n == "Via"]:
        out.add("Via", value)
    out.add("From", request.headers.get("From", ""))
    to = request.headers.get("To", "")
    if to_tag and request.to.tag is None and status > 100:
        to = f"{to};tag={to_tag}"
    out.add("To", to)
    out.add("Call-ID", request.headers.get("Call-ID", ""))
    out.add("CSeq", request.headers.get("CSeq", ""))
    if 100 < status < 300:
        for value in [v for n, v in request.headers if n == "Record-Route"]:
            out.add("Record-Route", value)
    for name, value in headers:
        out.add(name, value)
    return Response(status, reason, out, body)
