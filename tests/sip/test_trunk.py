"""Trunk rules (outcomes, cps, caller ID) and the trunk runtime against an in-process carrier:
407 on INVITE, registration with digest, OPTIONS health, channel limits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sip.endpoint import SipEndpoint
from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import Answered, Ended, Failed, Switch, SwitchError
from sip.transaction import Timers
from sip.trunk import TokenBucket, TrunkRuntime, TrunkState, outcome_for, refresh_delay
from tests.sip.fake_carrier import Carrier

FAST = Timers(0.02, 0.16, 0.2)
RTP = RtpSettings(port_min=51000, port_max=51999)


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "answered"), (486, "busy"), (600, "busy"), (408, "no_answer"), (480, "no_answer"), (487, "no_answer"),
    (404, "invalid"), (484, "invalid"), (604, "invalid"), (603, "rejected"), (503, "congestion"),
    (500, "congestion"), (502, "congestion"), (403, "failed"), (488, "failed"),
])
def test_outcome_mapping(status: int, outcome: str) -> None:
    assert outcome_for(status) == outcome


def test_token_bucket_spaces_calls_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    assert [bucket.take(0.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.0) == pytest.approx(0.2)
    assert bucket.take(1.0) == 0.0  # refilled


def test_refresh_happens_before_expiry() -> None:
    assert refresh_delay(600) == 300
    assert refresh_delay(40) == 10
    assert refresh_delay(10) == 1.0


def test_caller_id_presentation() -> None:
    plain = TrunkState(TrunkSettings(name="t", host="carrier.example", privacy="id"))
    headers = dict(plain.identity_headers("+15550001111"))
    assert headers["From"].startswith("<sip:+15550001111@carrier.example;user=phone>;tag=")
    assert headers["P-Asserted-Identity"] == "<sip:+15550001111@carrier.example;user=phone>"
    assert headers["Privacy"] == "id"
    hidden = TrunkState(TrunkSettings(name="t", host="carrier.example", anonymous_from=True, p_asserted_identity=True))
    hidden_headers = dict(hidden.identity_headers("+15550001111"))
    assert "anonymous@anonymous.invalid" in hidden_headers["From"]
    assert "+15550001111" in hidden_headers["P-Asserted-Identity"]
    assert plain.request_uri("+15551234567") == "sip:+15551234567@carrier.example;user=phone"


@pytest.fixture
async def carrier():  # type: ignore[no-untyped-def]
    endpoint = SipEndpoint(FAST)
    await endpoint.start(("127.0.0.1",), 0, ("udp",))
    yield Carrier(endpoint)
    await endpoint.close()


def carrier_port(carrier: Carrier) -> int:
    return next(iter(carrier.endpoint.transport.locals.values())).port


async def switch_for(carrier: Carrier, **overrides) -> Switch:  # type: ignore[no-untyped-def]
    values = {"name": "carrier", "host": "127.0.0.1", "port": carrier_port(carrier), "username": "trunkuser",
              "password": "pw", "options_enabled": False, "max_cps": 100}
    trunk = TrunkSettings(**(values | overrides))
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), t1_ms=20, t2_ms=160, t4_ms=200,
                      stop_grace_s=0.5)
    return await Switch.start(sip, RTP, [trunk], [])


async def last_event(call, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(asyncio.shield(call.done), timeout)


async def test_invite_407_is_answered_with_proxy_authorization(carrier: Carrier) -> None:
    switch = await switch_for(carrier)
    try:
        call = await switch.originate("carrier", "+15551239999", "+15550001111", {"X-Campaign": "c1"}, 5)
        events = []
        async for event in call.events():
            events.append(event)
            if isinstance(event, (Answered, Failed)):
                break
        assert isinstance(events[-1], Answered)
        invites = [r for r in carrier.seen if r.method == "INVITE"]
        assert len(invites) == 2 and invites[1].cseq.number == 2 and invites[1].call_id == invites[0].call_id
        assert "Proxy-Authorization" in invites[1].headers and invites[1].headers.get("X-Campaign") == "c1"
        assert invites[0].headers.get("P-Asserted-Identity") == "<sip:+15550001111@127.0.0.1;user=phone>"
        await switch.hangup(call)
        assert isinstance(await last_event(call), Ended)
    finally:
        await switch.stop()


async def test_max_channels_refuses_the_extra_call_as_congestion(carrier: Carrier) -> None:
    switch = await switch_for(carrier, max_channels=1)
    try:
        first = await switch.originate("carrier", "+15551230001", "+15550001111", {}, 5)
        second = await switch.originate("carrier", "+15551230002", "+15550001111", {}, 5)
        refused = await last_event(second)
        assert isinstance(refused, Failed) and refused.outcome == "congestion"
        await switch.hangup(first)
        await last_event(first)
        assert switch.trunks["carrier"].channels_in_use == 0
    finally:
        await switch.stop()


async def test_trunk_registration_with_digest_and_unregister(carrier: Carrier) -> None:
    endpoint = SipEndpoint(FAST)
    await endpoint.start(("127.0.0.1",), 0, ("udp",))
    state = TrunkState(TrunkSettings(name="carrier", host="127.0.0.1", port=carrier_port(carrier),
                                     username="trunkuser", password="pw", register=True, options_enabled=False))
    runtime = TrunkRuntime(state, endpoint)
    try:
        await runtime.start()
        await asyncio.wait_for(runtime.registered.wait(), 3)
        assert 80 < state.registered_until - endpoint.now <= 90  # the carrier granted 90 s
        registers = [r for r in carrier.seen if r.method == "REGISTER"]
        assert "Authorization" not in registers[0].headers and "Authorization" in registers[1].headers
        await runtime.stop()
        assert carrier.seen[-1].method == "REGISTER" and carrier.seen[-1].headers.get("Expires") == "0"
    finally:
        await runtime.stop()
        await endpoint.close()


async def test_options_health_marks_a_silent_trunk_down(carrier: Carrier) -> None:
    endpoint = SipEndpoint(FAST)
    await endpoint.start(("127.0.0.1",), 0, ("udp",))
    state = TrunkState(TrunkSettings(name="carrier", host="127.0.0.1", port=carrier_port(carrier),
                                     options_interval_s=0.1))
    runtime = TrunkRuntime(state, endpoint)
    try:
        assert (await asyncio.wait_for(runtime.start(), 2)) is None
        await asyncio.sleep(0.3)
        assert state.up
        carrier.silent = True
        for _ in range(60):
            await asyncio.sleep(0.1)
            if not state.up:
                break
        assert not state.up  # no answer within Timer F (64 * T1)
        carrier.silent = False
        for _ in range(30):
            await asyncio.sleep(0.1)
            if state.up:
                break
        assert state.up
    finally:
        await runtime.stop()
        await endpoint.close()


async def test_a_silent_trunk_is_skipped_after_failover_timeout(carrier: Carrier) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a black hole: not even 100 Trying
    silent.bind(("127.0.0.1", 0))
    carrier.challenge_invites = False
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=0.5)
    trunks = [TrunkSettings(name="dead", host="127.0.0.1", port=silent.getsockname()[1], options_enabled=False,
                            failover_timeout_s=0.3),
              TrunkSettings(name="alive", host="127.0.0.1", port=carrier_port(carrier), options_enabled=False)]
    switch = await Switch.start(sip, RTP, trunks, [])
    try:
        call = await switch.originate(["dead", "alive"], "+15551230077", "+15550001111", {}, 5)
        async for event in call.events():
            assert isinstance(event, Answered), event
            break
        assert call.trunk == "alive" and not switch.trunks["dead"].up
        assert switch.trunks["dead"].channels_in_use == 0 and switch.trunks["alive"].channels_in_use == 1
        alone = await switch.originate(["dead"], "+15551230078", "+15550001111", {}, 5)
        failed = await last_event(alone)
        assert isinstance(failed, Failed) and failed.outcome == "congestion"  # the only trunk is down
        await switch.hangup(call)
        await last_event(call)
        assert switch.trunks["alive"].channels_in_use == 0
    finally:
        await switch.stop()
        silent.close()


async def test_max_cps_delays_the_third_call_and_hangup_while_waiting_fails_it(carrier: Carrier) -> None:
    carrier.challenge_invites = False
    switch = await switch_for(carrier, max_cps=2)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await switch.originate("carrier", "+15551230101", "+15550001111", {}, 5)
        second = await switch.originate("carrier", "+15551230102", "+15550001111", {}, 5)
        assert loop.time() - started < 0.2  # the burst of two goes at once
        third = asyncio.ensure_future(switch.originate("carrier", "+15551230103", "+15550001111", {}, 5))
        await asyncio.sleep(0.1)
        assert not third.done()  # waiting for its calls-per-second slot
        fourth = asyncio.ensure_future(switch.originate("carrier", "+15551230104", "+15550001111", {}, 5))
        call = await third
        assert loop.time() - started >= 0.45
        for pending in list(switch.calls.values()):
            if pending.handle is None:
                await switch.hangup(pending)  # the fourth, still waiting for a slot
        fourth_call = await fourth
        failed = await last_event(fourth_call)
        assert isinstance(failed, Failed) and failed.sip_code == 487 and failed.outcome == "failed"
        invited = {r.to.uri.user for r in carrier.seen if r.method == "INVITE"}
        assert "+15551230104" not in invited and "+15551230103" in invited
        for answered_call in (first, second, call):
            await switch.hangup(answered_call)
    finally:
        await switch.stop()


async def test_refused_tcp_connection_fails_over_at_once(carrier: Carrier) -> None:
    carrier.challenge_invites = False
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp", "tcp"), stop_grace_s=0.5)
    trunks = [TrunkSettings(name="refusing", host="127.0.0.1", port=port, transport="tcp", options_enabled=False),
              TrunkSettings(name="alive", host="127.0.0.1", port=carrier_port(carrier), options_enabled=False)]
    switch = await Switch.start(sip, RTP, trunks, [])
    try:
        started = asyncio.get_running_loop().time()
        call = await switch.originate(["refusing", "alive"], "+15551230300", "+15550001111", {}, 5)
        async for event in call.events():
            assert isinstance(event, Answered), event
            break
        assert call.trunk == "alive" and asyncio.get_running_loop().time() - started < 1.0
        await switch.hangup(call)
    finally:
        await switch.stop()


async def test_no_free_rtp_port_is_a_clear_switch_error(carrier: Carrier) -> None:
    carrier.challenge_invites = False
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=0.5)
    trunk = TrunkSettings(name="carrier", host="127.0.0.1", port=carrier_port(carrier), options_enabled=False)
    switch = await Switch.start(sip, RtpSettings(port_min=51990, port_max=51991), [trunk], [])  # one port pair
    try:
        first = await switch.originate("carrier", "+15551230401", "+15550001111", {}, 5)
        with pytest.raises(SwitchError, match="no RTP port free"):
            await switch.originate("carrier", "+15551230402", "+15550001111", {}, 5)
        await switch.hangup(first)
    finally:
        await switch.stop()
