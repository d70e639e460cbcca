"""SDP (RFC 4566) parsing and building, and RFC 3264 offer/answer for one audio stream.

Sans-I/O: `SdpNegotiator` holds one leg's SDP session (origin, version, last offer) and turns remote SDP text into a
`Negotiated` result the media engine applies. Supported: PCMU (0), PCMA (8), telephone-event (dynamic PT), ptime,
sendrecv/sendonly/recvonly/inactive, IPv4 and IPv6 connection addresses. Other media streams are rejected (port 0).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field, replace
from typing import Literal

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_AUDIO: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
SUPPORTED_CODECS = ("PCMU", "PCMA")
TELEPHONE_EVENT = "telephone-event"


class SdpError(ValueError):
    """Malformed SDP. `line` is the 1-based line number, or None when the problem is not on one line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"SDP line {line}: {message}" if line is not None else f"SDP: {message}")


class SdpNegotiationError(ValueError):
    """Well-formed SDP we cannot accept (no common codec, stream rejected): the SIP layer answers 488."""


@dataclass(frozen=True, slots=True)
class Connection:
    address_type: Literal["IP4", "IP6"]
    address: str

    def serialize(self) -> str:
        return f"c=IN {self.address_type} {self.address}"

    @property
    def is_hold_address(self) -> bool:
        """RFC 2543-style hold: c=0.0.0.0 means 'do not send'."""
        return self.address in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class RtpMap:
    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmaps: dict[int, RtpMap] = field(default_factory=dict)
    fmtps: dict[int, str] = field(default_factory=dict)
    ptime_ms: int | None = None
    direction: Direction | None = None
    connection: Connection | None = None
    other_attributes: tuple[str, ...] = ()

    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit())

    def encoding_of(self, pt: int) -> RtpMap | None:
        if pt in self.rtpmaps:
            return self.rtpmaps[pt]
        if pt in STATIC_AUDIO:
            name, rate = STATIC_AUDIO[pt]
            return RtpMap(name, rate)
        return None

    def serialize(self) -> list[str]:
        lines = [f"m={self.media} {self.port} {self.proto} {' '.join(self.formats)}"]
        if self.connection is not None:
            lines.append(self.connection.serialize())
        for pt in self.payload_types():
            rtpmap = self.rtpmaps.get(pt)
            if rtpmap is not None:
                channels = f"/{rtpmap.channels}" if rtpmap.channels != 1 else ""
                lines.append(f"a=rtpmap:{pt} {rtpmap.encoding}/{rtpmap.clock_rate}{channels}")
            if pt in self.fmtps:
                lines.append(f"a=fmtp:{pt} {self.fmtps[pt]}")
        if self.ptime_ms is not None:
            lines.append(f"a=ptime:{self.ptime_ms}")
        if self.direction is not None:
            lines.append(f"a={self.direction}")
        lines.extend(f"a={a}" for a in self.other_attributes)
        return lines


@dataclass(frozen=True, slots=True)
class Origin:
    username: str
    session_id: int
    session_version: int
    address_type: Literal["IP4", "IP6"]
    address: str

    def serialize(self) -> str:
        return f"o={self.username} {self.session_id} {self.session_version} IN {self.address_type} {self.address}"


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    direction: Direction | None = None
    media: tuple[MediaDescription, ...] = ()
    timing: str = "0 0"

    def serialize(self) -> str:
        lines = ["v=0", self.origin.serialize(), f"s={self.session_name}"]
        if self.connection is not None:
            lines.append(self.connection.serialize())
        lines.append(f"t={self.timing}")
        if self.direction is not None:
            lines.append(f"a={self.direction}")
        for m in self.media:
            lines.extend(m.serialize())
        return "\r\n".join(lines) + "\r\n"

    def __str__(self) -> str:
        return self.serialize()

    def connection_for(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        return media.direction or self.direction or "sendrecv"


# ---------------------------------------------------------------- parsing


def _parse_connection(value: str, line: int) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c= must be 'IN IP4|IP6 <address>', got {value!r}", line)
    address = parts[2].split("/")[0]  # drop multicast TTL/count
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(f"c= address {address!r} is not an IP address", line) from None
    if (parsed.version == 4) != (parts[1] == "IP4"):
        raise SdpError(f"c= address {address!r} does not match address type {parts[1]}", line)
    return Connection(parts[1], address)  # type: ignore[arg-type]


def _parse_int(text: str, what: str, line: int, low: int = 0, high: int | None = None) -> int:
    if not text.isdigit():
        raise SdpError(f"{what} must be a non-negative integer, got {text!r}", line)
    value = int(text)
    if value < low or (high is not None and value > high):
        raise SdpError(f"{what} {value} is out of range", line)
    return value


class _MediaBuilder:
    def __init__(self, value: str, line: int) -> None:
        parts = value.split()
        if len(parts) < 4:
            raise SdpError(f"m= needs '<media> <port> <proto> <fmt> ...', got {value!r}", line)
        self.media = parts[0]
        self.port = _parse_int(parts[1].split("/")[0], "m= port", line, 0, 65535)
        self.proto = parts[2]
        self.formats = tuple(parts[3:])
        if self.proto.startswith("RTP/"):
            for fmt in self.formats:
                _parse_int(fmt, "RTP payload type", line, 0, 127)
        self.rtpmaps: dict[int, RtpMap] = {}
        self.fmtps: dict[int, str] = {}
        self.ptime_ms: int | None = None
        self.direction: Direction | None = None
        self.connection: Connection | None = None
        self.other: list[str] = []

    def attribute(self, value: str, line: int) -> None:
        name, _, rest = value.partition(":")
        if name == "rtpmap":
            pt_text, _, encoding = rest.partition(" ")
            pt = _parse_int(pt_text, "rtpmap payload type", line, 0, 127)
            pieces = encoding.strip().split("/")
            if len(pieces) < 2 or not pieces[0]:
                raise SdpError(f"rtpmap must be '<pt> <encoding>/<clock rate>', got {value!r}", line)
            rate = _parse_int(pieces[1], "rtpmap clock rate", line, 1)
            channels = _parse_int(pieces[2], "rtpmap channels", line, 1) if len(pieces) > 2 else 1
            self.rtpmaps[pt] = RtpMap(pieces[0], rate, channels)
        elif name == "fmtp":
            pt_text, _, params = rest.partition(" ")
            self.fmtps[_parse_int(pt_text, "fmtp payload type", line, 0, 127)] = params.strip()
        elif name == "ptime":
            self.ptime_ms = _parse_int(rest.strip().split(".")[0], "ptime", line, 1, 1000)
        elif name in DIRECTIONS and not rest:
            self.direction = name  # type: ignore[assignment]
        else:
            self.other.append(value)

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media, self.port, self.proto, self.formats, self.rtpmaps, self.fmtps, self.ptime_ms,
            self.direction, self.connection, tuple(self.other),
        )


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP body. Raises SdpError naming the line on anything malformed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError(f"body is not UTF-8 ({exc})") from None
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SdpError("empty body")
    origin: Origin | None = None
    session_name = "-"
    connection: Connection | None = None
    direction: Direction | None = None
    timing = "0 0"
    media: list[MediaDescription] = []
    current: _MediaBuilder | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"expected '<type>=<value>', got {line!r}", number)
        kind, value = line[0], line[2:]
        if number == 1:
            if kind != "v" or value.strip() != "0":
                raise SdpError("the first line must be v=0", number)
            continue
        if kind == "v":
            raise SdpError("v= may appear only once, first", number)
        if kind == "o":
            parts = value.split()
            if len(parts) != 6 or parts[3] != "IN" or parts[4] not in ("IP4", "IP6"):
                raise SdpError(f"o= needs 6 fields '<user> <id> <version> IN IP4|IP6 <addr>', got {value!r}", number)
            origin = Origin(
                parts[0], _parse_int(parts[1], "o= session id", number), _parse_int(parts[2], "o= version", number),
                parts[4], parts[5],  # type: ignore[arg-type]
            )
        elif kind == "s":
            session_name = value or "-"
        elif kind == "t":
            timing = value
        elif kind == "c":
            parsed = _parse_connection(value, number)
            if current is None:
                connection = parsed
            else:
                current.connection = parsed
        elif kind == "m":
            if origin is None:
                raise SdpError("m= before o=", number)
            if current is not None:
                media.append(current.build())
            current = _MediaBuilder(value, number)
        elif kind == "a":
            if current is not None:
                current.attribute(value, number)
            elif value in DIRECTIONS:
                direction = value  # type: ignore[assignment]
        # other types (i, u, e, p, b, z, k, r) carry nothing we use
    if current is not None:
        media.append(current.build())
    if origin is None:
        raise SdpError("missing o= line")
    for m in media:
        if m.port != 0 and (m.connection or connection) is None:
            raise SdpError(f"no c= line for the {m.media} stream (neither session-level nor media-level)")
    return SessionDescription(origin, session_name, connection, direction, tuple(media), timing)


# ---------------------------------------------------------------- offer / answer


@dataclass(frozen=True, slots=True)
class Negotiated:
    """Result of offer/answer for the audio stream, from OUR point of view."""

    codec: str  # "PCMU" | "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    ptime_ms: int  # packetisation time the remote asked to receive (default 20)
    direction: Direction  # what WE do: sendrecv, sendonly (we only send), recvonly, inactive
    remote_host: str
    remote_port: int

    @property
    def remote_address(self) -> tuple[str, int]:
        return (self.remote_host, self.remote_port)

    @property
    def we_send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def we_receive(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


_REVERSE: dict[str, Direction] = {
    "sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive",
}


def _intersect(a: Direction, b: Direction) -> Direction:
    send = a in ("sendrecv", "sendonly") and b in ("sendrecv", "sendonly")
    recv = a in ("sendrecv", "recvonly") and b in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, recv), "inactive"
    )  # type: ignore[return-value]


def _address_type(host: str) -> Literal["IP4", "IP6"]:
    return "IP6" if ipaddress.ip_address(host).version == 6 else "IP4"


class SdpNegotiator:
    """One leg's SDP session: builds our offers/answers and applies the remote's (RFC 3264)."""

    def __init__(
        self,
        local_host: str,
        local_port: int,
        codecs: tuple[str, ...] = SUPPORTED_CODECS,
        dtmf_payload_type: int = 101,
        ptime_ms: int = 20,
        username: str = "-",
    ) -> None:
        for codec in codecs:
            if codec not in SUPPORTED_CODECS:
                raise ValueError(f"unsupported codec {codec!r}; supported: {', '.join(SUPPORTED_CODECS)}")
        self.local_host = local_host
        self.local_port = local_port
        self.codecs = codecs
        self.dtmf_payload_type = dtmf_payload_type
        self.ptime_ms = ptime_ms
        self.username = username
        self.session_id = random.randrange(1, 2**62)
        self.session_version = random.randrange(1, 2**30)
        self._last_body: str | None = None
        self._pending_offer: SessionDescription | None = None
        self.local_direction: Direction = "sendrecv"
        self.negotiated: Negotiated | None = None

    # -- building

    def _session(self, media: tuple[MediaDescription, ...]) -> SessionDescription:
        body_key = "\n".join(line for m in media for line in m.serialize())
        if self._last_body is not None and body_key != self._last_body:
            self.session_version += 1  # RFC 3264 8: version increments only when the session changed
        self._last_body = body_key
        address_type = _address_type(self.local_host)
        return SessionDescription(
            Origin(self.username, self.session_id, self.session_version, address_type, self.local_host),
            "-", Connection(address_type, self.local_host), None, media,
        )

    def _audio(self, pts: list[tuple[int, RtpMap]], dtmf: tuple[int, str] | None, direction: Direction,
               ptime_ms: int | None, proto: str = "RTP/AVP") -> MediaDescription:
        rtpmaps = {pt: rtpmap for pt, rtpmap in pts}
        formats = [str(pt) for pt, _ in pts]
        fmtps: dict[int, str] = {}
        if dtmf is not None:
            rtpmaps[dtmf[0]] = RtpMap(TELEPHONE_EVENT, 8000)
            fmtps[dtmf[0]] = dtmf[1]
            formats.append(str(dtmf[0]))
        return MediaDescription("audio", self.local_port, proto, tuple(formats), rtpmaps, fmtps, ptime_ms,
                                direction)

    def make_offer(self, direction: Direction = "sendrecv") -> SessionDescription:
        """Our (re-)offer. direction='sendonly' puts the remote on hold, 'sendrecv' resumes."""
        pts = [(pt, RtpMap(name, rate)) for pt, (name, rate) in STATIC_AUDIO.items() if name in self.codecs]
        pts.sort(key=lambda item: self.codecs.index(item[1].encoding))
        audio = self._audio(pts, (self.dtmf_payload_type, "0-16"), direction, self.ptime_ms)
        self.local_direction = direction
        offer = self._session((audio,))
        self._pending_offer = offer
        return offer

    # -- applying the remote's SDP

    def _pick_audio(self, remote: SessionDescription, prefer_remote_order: bool) -> tuple[int, int, int | None]:
        """(index of the audio stream, our codec payload type, remote telephone-event PT)."""
        for index, m in enumerate(remote.media):
            if m.media != "audio" or m.port == 0 or m.proto not in ("RTP/AVP", "RTP/AVPF"):
                continue
            candidates = [pt for pt in m.payload_types()
                          if (enc := m.encoding_of(pt)) is not None and enc.encoding.upper() in self.codecs
                          and enc.clock_rate == 8000]
            if not candidates:
                continue
            if not prefer_remote_order:
                candidates.sort(key=lambda pt: self.codecs.index(m.encoding_of(pt).encoding.upper()))  # type: ignore[union-attr]
            dtmf = next((pt for pt in m.payload_types()
                         if (enc := m.encoding_of(pt)) is not None and enc.encoding.lower() == TELEPHONE_EVENT
                         and enc.clock_rate == 8000), None)
            return index, candidates[0], dtmf
        offered = ", ".join(f"{m.media} port {m.port} {m.proto} {' '.join(m.formats)}" for m in remote.media) or "none"
        raise SdpNegotiationError(f"no acceptable audio stream (we support {', '.join(self.codecs)}); offered: {offered}")

    def _negotiated(self, remote: SessionDescription, m: MediaDescription, pt: int, dtmf: int | None,
                    direction: Direction) -> Negotiated:
        connection = remote.connection_for(m)
        assert connection is not None  # parse_sdp guarantees it for non-rejected streams
        if connection.is_hold_address:
            direction = _intersect(direction, "recvonly")
        codec = m.encoding_of(pt).encoding.upper()  # type: ignore[union-attr]
        self.negotiated = Negotiated(codec, pt, dtmf, m.ptime_ms or 20, direction, connection.address, m.port)
        return self.negotiated

    def receive_offer(self, remote_offer: str | bytes | SessionDescription,
                      direction: Direction | None = None) -> tuple[SessionDescription, Negotiated]:
        """Answer a remote (re-)offer. Unsupported streams are rejected with port 0; raises SdpNegotiationError
        when no audio stream is acceptable."""
        offer = remote_offer if isinstance(remote_offer, SessionDescription) else parse_sdp(remote_offer)
        index, pt, dtmf = self._pick_audio(offer, prefer_remote_order=True)
        wanted = direction or self.local_direction
        chosen = offer.media[index]
        our_direction = _intersect(wanted, _REVERSE[offer.direction_for(chosen)])
        answers: list[MediaDescription] = []
        for i, m in enumerate(offer.media):
            if i != index:
                answers.append(MediaDescription(m.media, 0, m.proto, m.formats))
                continue
            rtpmap = chosen.encoding_of(pt)
            assert rtpmap is not None
            dtmf_entry = (dtmf, chosen.fmtps.get(dtmf, "0-15")) if dtmf is not None else None
            answers.append(self._audio([(pt, RtpMap(rtpmap.encoding, 8000))], dtmf_entry, our_direction,
                                       self.ptime_ms, chosen.proto))
        answer = self._session(tuple(answers))
        self._pending_offer = None
        return answer, self._negotiated(offer, chosen, pt, dtmf, our_direction)

    def receive_answer(self, remote_answer: str | bytes | SessionDescription) -> Negotiated:
        """Apply the remote's answer to our last offer."""
        if self._pending_offer is None:
            raise SdpNegotiationError("received an SDP answer but no offer is outstanding")
        answer = remote_answer if isinstance(remote_answer, SessionDescription) else parse_sdp(remote_answer)
        if not answer.media or answer.media[0].port == 0:
            raise SdpNegotiationError("the remote rejected our audio stream (port 0)")
        m = answer.media[0]
        try:
            _, pt, dtmf = self._pick_audio(replace(answer, media=(m,)), prefer_remote_order=True)
        except SdpNegotiationError:
            raise SdpNegotiationError(f"the answer selects no codec we offered: {' '.join(m.formats)}") from None
        direction = _intersect(self.local_direction, _REVERSE[answer.direction_for(m)])
        self._pending_offer = None
        return self._negotiated(answer, m, pt, dtmf, direction)
