"""The thin asyncio (uvloop-compatible) shell around sockets: UDP, TCP and TLS, IPv4 and IPv6.

Bytes in are parsed here; a malformed request is answered 400 (505 for a bad version) when it can be and dropped
otherwise. Parsed messages go to one `on_message(message, source, local)` callback. No exception raised by parsing,
by the callback or by a peer's socket leaves this module: each is logged and the socket keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Callable

from sip.errors import SipParseError
from sip.message import Message, Response, StreamParser, error_response_for, parse_message
from sip.transaction import Address

log = logging.getLogger("sip.transport")

OnMessage = Callable[[Message, Address, "LocalEnd"], None]


@dataclass(frozen=True, slots=True)
class LocalEnd:
    """Our side of a socket: what goes into Via sent-by and Contact."""

    transport: str
    host: str
    port: int

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _deliver(data: bytes, source: Address, local: LocalEnd, on_message: OnMessage,
             reply: Callable[[bytes], None], *, datagram: bool) -> None:
    try:
        message = parse_message(data, datagram=datagram)
    except SipParseError as error:
        _answer_malformed(data, error, source, reply)
        return
    except Exception:  # noqa: BLE001 - a parser bug must not kill the socket
        log.exception("parser failure on %d bytes from %s", len(data), source)
        return
    _dispatch(message, source, local, on_message)


_LONG_DIGITS = re.compile(r"(\+?\d{3})\d{3,}(\d{4})")


def masked(text: str) -> str:
    """Parse errors quote header text, which may hold phone numbers: keep them out of logs (+86138****8000)."""
    return _LONG_DIGITS.sub(r"\1****\2", text)


def _answer_malformed(data: bytes, error: SipParseError, source: Address, reply: Callable[[bytes], None]) -> None:
    log.info("malformed message from %s:%s: %s", source.host, source.port, masked(error.reason))
    try:
        response = error_response_for(data, error)
        if response is not None:
            reply(response.to_bytes())
    except Exception:  # noqa: BLE001
        log.exception("could not answer a malformed message from %s", source)


def _dispatch(message: Message, source: Address, local: LocalEnd, on_message: OnMessage) -> None:
    try:
        on_message(message, source, local)
    except Exception:  # noqa: BLE001 - one bad handler must not stop the transport
        log.exception("handler failed for %r from %s", message, source)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None
        self.local: LocalEnd | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = LocalEnd("udp", host, port)

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive
        source = Address("udp", addr[0], addr[1])
        assert self.local is not None
        _deliver(data, source, self.local, self.on_message, lambda out: self.sendto(out, addr[:2]), datagram=True)

    def sendto(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        try:
            if self.transport is not None:
                self.transport.sendto(data, addr)
        except Exception:  # noqa: BLE001
            log.exception("UDP send to %s failed", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, kind: str, on_message: OnMessage, registry: dict[tuple[str, str, int], _StreamProtocol]) -> None:
        self.kind = kind
        self.on_message = on_message
        self.registry = registry
        self.parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.remote: Address | None = None
        self.local: LocalEnd | None = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        own = transport.get_extra_info("sockname")
        self.remote = Address(self.kind, peer[0], peer[1])
        self.local = LocalEnd(self.kind, own[0], own[1])
        self.registry[(self.kind, peer[0], peer[1])] = self
        if not self.ready.done():
            self.ready.set_result(self)

    def data_received(self, data: bytes) -> None:
        assert self.remote is not None and self.local is not None
        for item in self.parser.feed(data):
            if isinstance(item, SipParseError):
                raw = getattr(item, "raw", b"")
                _answer_malformed(raw, item, self.remote, self.write)
                if not raw:  # framing is lost: the stream cannot be trusted any more
                    self.close()
                    return
                continue
            _dispatch(item, self.remote, self.local, self.on_message)

    def write(self, data: bytes) -> None:
        try:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)
        except Exception:  # noqa: BLE001
            log.exception("stream write to %s failed", self.remote)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.remote is not None:
            self.registry.pop((self.kind, self.remote.host, self.remote.port), None)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(str(exc)))


def _grow_buffers(transport: asyncio.BaseTransport, size: int) -> None:
    """Bursts of hundreds of calls a second overflow the default 200 kB UDP buffers; losses become retransmits."""
    sock = transport.get_extra_info("socket")
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except (OSError, AttributeError):
            log.info("could not set UDP buffer option %s to %d bytes", option, size)


class TransportLayer:
    """All listening and client sockets of one SIP endpoint."""

    def __init__(self, on_message: OnMessage, *, tls_context: ssl.SSLContext | None = None,
                 on_send_failure: Callable[[Message, Address], None] | None = None) -> None:
        self.on_message = on_message
        self.on_send_failure = on_send_failure
        self.tls_context = tls_context
        self._udp: dict[int, _UdpProtocol] = {}  # by address family
        self._servers: list[asyncio.base_events.Server] = []
        self._streams: dict[tuple[str, str, int], _StreamProtocol] = {}
        self._connecting: dict[tuple[str, str, int], asyncio.Task[_StreamProtocol]] = {}
        self.locals: dict[tuple[str, int], LocalEnd] = {}  # (transport, family) -> our address

    async def start(self, hosts: tuple[str, ...], port: int, transports: tuple[str, ...],
                    udp_buffer_bytes: int = 4 * 1024 * 1024, tls_server: ssl.SSLContext | None = None) -> None:
        """Listen on every host; UDP and TCP share a port, TLS (needs `tls_server`) takes a free one."""
        loop = asyncio.get_running_loop()
        for host in hosts:
            family = _family(host)
            chosen = port
            if "udp" in transports:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self.on_message), local_addr=(host, chosen), family=family)
                _grow_buffers(transport, udp_buffer_bytes)
                assert protocol.local is not None
                self._udp[family] = protocol
                self.locals[("udp", family)] = protocol.local
                chosen = protocol.local.port
            if "tcp" in transports:
                server = await loop.create_server(
                    lambda: _StreamProtocol("tcp", self.on_message, self._streams), host, chosen, family=family,
                    reuse_address=True)
                self._servers.append(server)
                bound = server.sockets[0].getsockname()
                self.locals[("tcp", family)] = LocalEnd("tcp", host, bound[1])
            if "tls" in transports and tls_server is not None:
                server = await loop.create_server(
                    lambda: _StreamProtocol("tls", self.on_message, self._streams), host, 0, family=family,
                    ssl=tls_server, reuse_address=True)
                self._servers.append(server)
                self.locals[("tls", family)] = LocalEnd("tls", host, server.sockets[0].getsockname()[1])

    def local_for(self, destination: Address) -> LocalEnd:
        family = _family(destination.host)
        if destination.transport == "tls" and ("tls", family) in self.locals:
            return self.locals[("tls", family)]
        kind = "tcp" if destination.transport in ("tcp", "tls") else "udp"
        local = self.locals.get((kind, family)) or self.locals.get((kind, socket.AF_INET)) or next(iter(self.locals.values()))
        return local if destination.transport != "tls" else LocalEnd("tls", local.host, local.port)

    def send(self, message: Message, destination: Address) -> None:
        """Queue a message; never raises. Stream connections are opened on demand."""
        try:
            data = message.to_bytes()
        except Exception:  # noqa: BLE001
            log.exception("could not serialise %r", message)
            return
        if destination.transport == "udp":
            protocol = self._udp.get(_family(destination.host))
            if protocol is None:
                log.warning("no UDP socket for %s", destination)
                return
            protocol.sendto(data, (destination.host, destination.port))
            return
        key = (destination.transport, destination.host, destination.port)
        stream = self._streams.get(key)
        if stream is not None:
            stream.write(data)
            return
        if isinstance(message, Response):
            log.info("no connection left to send %r to %s", message, destination)
            return
        task = self._connecting.get(key)
        if task is None:
            task = asyncio.ensure_future(self._connect(destination))
            self._connecting[key] = task
            task.add_done_callback(lambda _t: self._connecting.pop(key, None))
        task.add_done_callback(lambda t: self._write_when_ready(t, data, message, destination))

    def _write_when_ready(self, task: asyncio.Task[_StreamProtocol], data: bytes, message: Message,
                          destination: Address) -> None:
        if task.cancelled() or task.exception() is not None:
            log.warning("cannot connect to %s: %s", destination, None if task.cancelled() else task.exception())
            if self.on_send_failure is not None:
                try:
                    self.on_send_failure(message, destination)
                except Exception:  # noqa: BLE001
                    log.exception("send-failure handler failed")
            return
        task.result().write(data)

    async def _connect(self, destination: Address) -> _StreamProtocol:
        loop = asyncio.get_running_loop()
        context = None
        if destination.transport == "tls":
            context = self.tls_context or ssl.create_default_context()
        _, protocol = await loop.create_connection(
            lambda: _StreamProtocol(destination.transport, self.on_message, self._streams),
            destination.host, destination.port, ssl=context,
            server_hostname=destination.host if context is not None else None)
        return await protocol.ready  # type: ignore[no-any-return]

    def is_connected(self, destination: Address) -> bool:
        return (destination.transport, destination.host, destination.port) in self._streams

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for stream in list(self._streams.values()):
            stream.close()
        for protocol in self._udp.values():
            if protocol.transport is not None:
                protocol.transport.close()
        for task in list(self._connecting.values()):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        await asyncio.sleep(0)


__all__ = ["LocalEnd", "TransportLayer"]
