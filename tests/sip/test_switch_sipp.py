"""The Switch against SIPp callees on loopback: answer, busy, no answer, 404, 503 (with failover), early media,
answer then immediate BYE, and the CANCEL/200 race. Each SIPp run must end without a failed call."""

from __future__ import annotations

import asyncio

import pytest

from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import AgentCredentials, Answered, EarlyMedia, Ended, Failed, Ringing, Switch

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]
RTP = RtpSettings(port_min=50000, port_max=50999)


def trunk(name: str, peer, **overrides) -> TrunkSettings:  # type: ignore[no-untyped-def]
    settings = {"name": name, "host": "127.0.0.1", "port": peer.port, "options_enabled": False, "max_cps": 100}
    return TrunkSettings(**(settings | overrides))


async def start_switch(*trunks: TrunkSettings, host: str = "127.0.0.1") -> Switch:
    sip = SipSettings(bind_host=host, port=0, transports=("udp", "tcp"), t1_ms=100, t2_ms=800, t4_ms=1000,
                      stop_grace_s=1.0)
    return await Switch.start(sip, RTP, list(trunks), [])


async def collect(call, until=(Failed, Ended), timeout: float = 15.0) -> list:  # type: ignore[no-untyped-def]
    events = []

    async def run() -> None:
        async for event in call.events():
            events.append(event)
            if isinstance(event, until):
                return
    await asyncio.wait_for(run(), timeout)
    return events


@pytest.mark.parametrize(("transport", "host"), [("udp", "127.0.0.1"), ("tcp", "127.0.0.1"), ("udp", "::1")])
async def test_answer_then_we_hang_up(sipp, transport: str, host: str) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_answer.xml", transport=transport, host=host)
    switch = await start_switch(trunk("carrier", peer, transport=transport, host=host), host=host)
    provisional: list[tuple[str, int]] = []
    switch.on_provisional_response = lambda trunk_name, status: provisional.append((trunk_name, status))
    try:
        call = await switch.originate("carrier", "+15551230001", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call, until=Answered)
        assert [type(e) for e in events] == [Ringing, Answered]
        assert ("carrier", 180) in provisional and all(100 <= status < 200 for _, status in provisional)
        assert call.leg.negotiated is not None and call.leg.negotiated.codec == "PCMU"
        await switch.hangup(call)
        assert (await collect(call)) == [Ended(call.call_id, "local", "normal")]
        assert await peer.wait() == 0, peer.errors()
    finally:
        await switch.stop()


@pytest.mark.parametrize(("code", "reason", "outcome"), [
    ("486", "Busy Here", "busy"), ("404", "Not Found", "invalid"), ("503", "Service Unavailable", "congestion"),
    ("603", "Decline", "rejected"), ("480", "Temporarily Unavailable", "no_answer"),
])
async def test_rejections_map_to_outcomes(sipp, code: str, reason: str, outcome: str) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_reject.xml", keys={"code": code, "reason": reason})
    switch = await start_switch(trunk("carrier", peer))
    try:
        call = await switch.originate("carrier", "+15551230002", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call)
        assert events[-1] == Failed(call.call_id, int(code), outcome, reason)
        assert await peer.wait() == 0, peer.errors()  # our ACK for the final response reached SIPp
        assert switch.trunks["carrier"].channels_in_use == 0
    finally:
        await switch.stop()


async def test_503_fails_over_to_the_next_trunk(sipp) -> None:  # type: ignore[no-untyped-def]
    down = await sipp("uas_reject.xml", keys={"code": "503", "reason": "Service Unavailable"})
    up = await sipp("uas_answer.xml")
    switch = await start_switch(trunk("first", down), trunk("second", up))
    try:
        call = await switch.originate(["first", "second"], "+15551230003", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call, until=Answered)
        assert isinstance(events[-1], Answered) and call.trunk == "second"
        await switch.hangup(call)
        await collect(call)
        assert await down.wait() == 0, down.errors()
        assert await up.wait() == 0, up.errors()
    finally:
        await switch.stop()


async def test_no_answer_is_cancelled_after_ring_timeout(sipp) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_no_answer.xml")
    switch = await start_switch(trunk("carrier", peer))
    try:
        call = await switch.originate("carrier", "+15551230004", "+15550009999", {}, ring_timeout_s=0.5)
        events = await collect(call)
        assert [type(e) for e in events] == [Ringing, Failed]
        assert events[-1].sip_code == 487 and events[-1].outcome == "no_answer"
        assert await peer.wait() == 0, peer.errors()
    finally:
        await switch.stop()


async def test_early_media_183_then_answer(sipp) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_early_media.xml")
    switch = await start_switch(trunk("carrier", peer))
    try:
        call = await switch.originate("carrier", "+15551230005", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call, until=Answered)
        assert [type(e) for e in events] == [EarlyMedia, Answered]
        assert call.leg.negotiated is not None and call.leg.negotiated.codec == "PCMA"
        await switch.hangup(call)
        await collect(call)
        assert await peer.wait() == 0, peer.errors()
    finally:
        await switch.stop()


async def test_answer_then_immediate_bye_from_callee(sipp) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_answer_then_bye.xml")
    switch = await start_switch(trunk("carrier", peer))
    try:
        call = await switch.originate("carrier", "+15551230006", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call)
        assert [type(e) for e in events] == [Answered, Ended]
        assert events[-1].by == "remote"
        assert await peer.wait() == 0, peer.errors()
        assert call.leg.released
    finally:
        await switch.stop()


async def test_200_crossing_our_cancel_is_acked_and_byed(sipp) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_cancel_race.xml")
    switch = await start_switch(trunk("carrier", peer))
    try:
        call = await switch.originate("carrier", "+15551230007", "+15550009999", {}, ring_timeout_s=0.4)
        events = await collect(call)
        assert [type(e) for e in events] == [Ringing, Failed]
        assert events[-1].outcome == "no_answer"
        assert await peer.wait() == 0, peer.errors()  # SIPp saw our ACK and then our BYE
    finally:
        await switch.stop()


@pytest.mark.parametrize(("password", "expected"), [("trunkpass", Answered), ("wrong", Failed)])
async def test_carrier_digest_challenge_is_answered(sipp, password: str, expected: type) -> None:  # type: ignore[no-untyped-def]
    peer = await sipp("uas_digest.xml")
    switch = await start_switch(trunk("carrier", peer, username="trunkuser", password=password))
    try:
        call = await switch.originate("carrier", "+15551230008", "+15550009999", {}, ring_timeout_s=10)
        events = await collect(call, until=(Answered, Failed))
        assert isinstance(events[-1], expected)
        if expected is Failed:
            assert events[-1].sip_code == 403 and events[-1].outcome == "failed"
        else:
            await switch.hangup(call)
            await collect(call)
        assert await peer.wait() == 0, peer.errors()
    finally:
        await switch.stop()


AGENT = AgentCredentials("agent7", None, "agent7", "s3cret")


async def start_switch_with_agents(algorithms=("MD5",)) -> Switch:  # type: ignore[no-untyped-def]
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), t1_ms=100, t2_ms=800, t4_ms=1000,
                      stop_grace_s=1.0, digest_algorithms=algorithms)
    return await Switch.start(sip, RTP, [], [AGENT])


@pytest.mark.parametrize(("password", "expect"), [("s3cret", "200"), ("guess", "401")])
async def test_softphone_registers_with_digest(sipp, password: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    switch = await start_switch_with_agents(("MD5",))  # SIPp's client digest speaks MD5 only
    try:
        phone = await sipp("uac_register.xml", remote=f"127.0.0.1:{switch.local_port()}",
                           keys={"user": "agent7", "password": password, "expect": expect, "contact_port": "5999"})
        assert await phone.wait() == 0, phone.errors()
        bindings = switch.registrar.lookup("agent7", switch.endpoint.now)
        assert [b.contact.uri.port for b in bindings] == ([5999] if expect == "200" else [])
    finally:
        await switch.stop()


async def test_registered_agent_is_called_at_its_contact(sipp) -> None:  # type: ignore[no-untyped-def]
    switch = await start_switch_with_agents(("MD5",))
    try:
        softphone = await sipp("uas_answer.xml")
        registration = await sipp("uac_register.xml", remote=f"127.0.0.1:{switch.local_port()}", keys={
            "user": "agent7", "password": "s3cret", "expect": "200", "contact_port": str(softphone.port)})
        assert await registration.wait() == 0, registration.errors()
        agent = await switch.call_agent("agent7")
        events = await collect(agent, until=Answered)
        assert [type(e) for e in events] == [Ringing, Answered]
        await switch.hangup(agent)
        await collect(agent)
        assert await softphone.wait() == 0, softphone.errors()
    finally:
        await switch.stop()
