"""Transports and the endpoint over loopback sockets: UDP, TCP, IPv4, IPv6, malformed input, failing handlers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sip.endpoint import SipEndpoint
from sip.message import Request, make_response, parse_message
from sip.transaction import Address, Timers

FAST = Timers(0.05, 0.4, 0.5)


async def endpoint(host: str = "127.0.0.1", transports=("udp", "tcp")) -> SipEndpoint:  # type: ignore[no-untyped-def]
    ep = SipEndpoint(FAST)
    await ep.start((host,), 0, transports)
    return ep


def answer_options(ep: SipEndpoint, calls: list[Request]) -> None:
    def handler(request, tx, source, local):  # type: ignore[no-untyped-def]
        calls.append(request)
        ep.respond(tx, make_response(request, 200, headers=[("Allow", "INVITE, OPTIONS")]))
    ep.request_handler = handler


def options(ep: SipEndpoint, destination: Address) -> Request:
    return Request("OPTIONS", f"sip:peer@{destination.host}:{destination.port}" if ":" not in destination.host
                   else f"sip:peer@[{destination.host}]:{destination.port}", [
        ("Via", ep.via_for(destination)), ("Max-Forwards", "70"), ("From", "<sip:a@example>;tag=x"),
        ("To", "<sip:peer@example>"), ("Call-ID", f"opt-{destination.transport}-{destination.host}"),
        ("CSeq", "1 OPTIONS"), ("Contact", ep.contact_for(destination))])


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_options_round_trip(host: str, transport: str) -> None:
    if host == "::1" and not has_ipv6():
        pytest.fail("IPv6 loopback is not available on this machine")
    client, server = await endpoint(host), await endpoint(host)
    try:
        seen: list[Request] = []
        answer_options(server, seen)
        local = server.transport.locals[(transport, socket.AF_INET6 if ":" in host else socket.AF_INET)]
        destination = Address(transport, host, local.port)
        response = await asyncio.wait_for(client.request(options(client, destination), destination), 2)
        assert response is not None and response.status == 200
        assert seen[0].via.transport == transport.upper()
    finally:
        await client.close()
        await server.close()


async def test_timeout_resolves_none_after_timer_f() -> None:
    client = await endpoint()
    try:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        destination = Address("udp", "127.0.0.1", silent.getsockname()[1])
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(client.request(options(client, destination), destination), 5) is None
        assert asyncio.get_running_loop().time() - started >= 64 * FAST.t1 - 0.01
        silent.setblocking(False)
        retransmissions = 0
        while True:
            try:
                silent.recv(4096)
                retransmissions += 1
            except BlockingIOError:
                break
        assert retransmissions >= 5  # Timer E kept resending
        silent.close()
    finally:
        await client.close()


async def options_server_and_raw_socket() -> tuple[SipEndpoint, list[Request], int, socket.socket]:
    """An endpoint answering OPTIONS (recording them) and a non-blocking UDP socket to throw bytes at it."""
    server = await endpoint()
    seen: list[Request] = []
    answer_options(server, seen)
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.setblocking(False)
    return server, seen, server.transport.locals[("udp", socket.AF_INET)].port, raw


async def test_malformed_request_gets_400_malformed_response_is_dropped_and_socket_survives() -> None:
    server, seen, port, raw = await options_server_and_raw_socket()
    loop = asyncio.get_running_loop()

    async def receive() -> bytes:
        return await asyncio.wait_for(loop.sock_recv(raw, 4096), 2)
    try:
        bad = (b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\n"
               b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: bad1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
        raw.sendto(bad, ("127.0.0.1", port))
        answer = parse_message(await receive())
        assert answer.status == 400 and answer.call_id == "bad1"  # type: ignore[union-attr]
        raw.sendto(b"SIP/2.0 99999 nonsense\r\n\r\n", ("127.0.0.1", port))
        raw.sendto(b"\x00\xff garbage", ("127.0.0.1", port))
        good = bad.replace(b"1 INVITE", b"1 OPTIONS").replace(b"bad1", b"good1")
        raw.sendto(good, ("127.0.0.1", port))
        assert parse_message(await receive()).status == 200  # type: ignore[union-attr]
        assert [r.call_id for r in seen] == ["good1"]
    finally:
        raw.close()
        await server.close()


async def test_handler_exception_does_not_escape_and_tcp_framing_survives_split_writes() -> None:
    server = await endpoint()
    calls = []

    def exploding(request, tx, source, local):  # type: ignore[no-untyped-def]
        calls.append(request.call_id)
        if request.call_id == "boom":
            raise RuntimeError("handler bug")
        server.respond(tx, make_response(request, 200))
    server.request_handler = exploding
    port = server.transport.locals[("tcp", socket.AF_INET)].port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        template = (b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK%s\r\n"
                    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
                    b"Content-Length: 0\r\n\r\n")
        stream = template % (b"1", b"boom") + template % (b"2", b"fine")
        for i in range(0, len(stream), 11):
            writer.write(stream[i : i + 11])
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"SIP/2.0 200") and b"Call-ID: fine" in head
        assert calls == ["boom", "fine"]
    finally:
        writer.close()
        await server.close()


def test_parse_errors_are_logged_with_numbers_masked(caplog) -> None:  # type: ignore[no-untyped-def]
    from sip.transport import _answer_malformed
    from sip.errors import SipParseError

    with caplog.at_level("INFO", logger="sip.transport"):
        _answer_malformed(b"", SipParseError("bad display name in '+8613812348000 <sip:x@y>'"),
                          Address("udp", "127.0.0.1", 5060), lambda _: None)
    assert "+861****8000" in caplog.text and "+8613812348000" not in caplog.text


async def test_endpoint_survives_a_storm_of_mutated_datagrams(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging
    import random

    server, seen, port, raw = await options_server_and_raw_socket()
    good = (b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstorm%d\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: storm%d\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n")
    rng = random.Random(4475)
    try:
        for i in range(400):
            data = bytearray(good % (i, i))
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            raw.sendto(bytes(data), ("127.0.0.1", port))
            if i % 50 == 0:
                await asyncio.sleep(0)
        raw.sendto(good % (9999, 9999), ("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while loop.time() < deadline and not any(r.call_id == "storm9999" for r in seen):
            await asyncio.sleep(0.02)
        assert any(r.call_id == "storm9999" for r in seen)  # still serving after the storm
        bugs = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("sip")]
        assert not bugs, bugs[0].getMessage()  # every bad datagram was a parse error, none a crash
    finally:
        raw.close()
        await server.close()
