"""A pjsua2 softphone registers as an agent with digest credentials; Switch.call_agent(agent id) reaches it at the
Contact it registered and the audio path works both ways. A wrong password is refused; on shutdown the phone's
unREGISTER removes the binding, a re-REGISTER renews it. Two phones on one agent's account both hold bindings and the newest is called; an
agent's phone that is busy or does not answer ends the agent leg with the matching outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.switch import AgentCredentials, Answered, Failed, SwitchError
from tests.sip.peers.harness import (
    AGENT_HZ, CALLEE_HZ, assert_tones_crossed, call_and_bridge, start_switch,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]

AGENT = AgentCredentials("agent5", None, "agent5", "pw-agent5")


@pytest.mark.parametrize("algorithms", [("MD5",), ("SHA-256", "MD5")], ids=["md5", "sha256-preferred"])
async def test_registered_pjsua_agent_is_called_by_id(pjsua, tmp_path: Path, algorithms) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    switch = await start_switch(callee_ua, [AGENT], sip={"digest_algorithms": algorithms})
    try:
        with pytest.raises(SwitchError, match="not registered"):
            await switch.call_agent("agent5")
        agent_ua = await pjsua("agent", "agent", tone_hz=AGENT_HZ, user="agent5",
                               registrar=f"127.0.0.1:{switch.local_port()}", password="pw-agent5")
        registered = await agent_ua.wait_for("registered", 10)
        assert registered["code"] == 200, registered
        [binding] = switch.registrar.lookup("agent5", switch.endpoint.now)
        assert binding.contact.uri.port == agent_ua.port

        callee, agent, recording = await call_and_bridge(switch, "pjsua", callee_ua, "agent5", agent_ua, tmp_path)
        await switch.hangup(callee)
        await switch.hangup(agent)
        await asyncio.wait_for(asyncio.gather(asyncio.shield(callee.done), asyncio.shield(agent.done)), 5)
        await agent_ua.wait_for("disconnected", 5)
        await agent_ua.stop()  # pjsua unREGISTERs on shutdown
        assert switch.registrar.lookup("agent5", switch.endpoint.now) == []
    finally:
        await switch.stop()
    authorizations = [line for line in agent_ua.log.read_text(errors="replace").splitlines()
                      if line.startswith("Authorization: Digest")]  # pjsip writes its log file at exit
    assert authorizations and all(f"algorithm={algorithms[0]}," in line for line in authorizations), authorizations
    assert_tones_crossed(callee_ua, agent_ua, recording)


async def test_pjsua_agent_with_a_wrong_password_is_refused(pjsua) -> None:  # type: ignore[no-untyped-def]
    switch = await start_switch(None, [AGENT])
    try:
        agent_ua = await pjsua("agent", "agent", record=False, user="agent5",
                               registrar=f"127.0.0.1:{switch.local_port()}", password="guess")
        registered = await agent_ua.wait_for("registered", 10)
        assert registered["code"] == 401, registered
        assert switch.registrar.lookup("agent5", switch.endpoint.now) == []
        with pytest.raises(SwitchError, match="not registered"):
            await switch.call_agent("agent5")
    finally:
        await switch.stop()


async def register(pjsua, name: str, **kwargs):  # type: ignore[no-untyped-def]
    ua = await pjsua(name, "agent", user="agent5", password="pw-agent5", record=False, **kwargs)
    registered = await ua.wait_for("registered", 10)
    assert registered["code"] == 200, registered
    return ua


async def test_two_phones_on_one_account_and_the_newest_is_called(pjsua) -> None:  # type: ignore[no-untyped-def]
    switch = await start_switch(None, [AGENT])
    registrar = f"127.0.0.1:{switch.local_port()}"
    try:
        older = await register(pjsua, "desk", registrar=registrar)
        newer = await register(pjsua, "headset", registrar=registrar)
        bindings = switch.registrar.lookup("agent5", switch.endpoint.now)  # the same Expires: newest last to expire
        assert [b.contact.uri.port for b in bindings] == [newer.port, older.port]
        agent = await switch.call_agent("agent5")
        async for event in agent.events():
            if isinstance(event, (Answered, Failed)):
                break
        assert isinstance(event, Answered)
        await newer.wait_for("confirmed", 5)
        assert not any(e["event"] == "incoming" for e in older.events)
        await switch.hangup(agent)
        await asyncio.wait_for(asyncio.shield(agent.done), 5)
    finally:
        await switch.stop()


@pytest.mark.parametrize(("answer_code", "status", "outcome"), [(486, 486, "busy"), (0, 487, "no_answer")])
async def test_agent_phone_busy_or_not_answering(pjsua, answer_code: int, status: int, outcome: str) -> None:  # type: ignore[no-untyped-def]
    switch = await start_switch(None, [AGENT])
    try:
        await register(pjsua, "agent", registrar=f"127.0.0.1:{switch.local_port()}", answer_code=answer_code)
        agent = await switch.call_agent("agent5", ring_timeout_s=1.0)
        final = await asyncio.wait_for(asyncio.shield(agent.done), 10)
        assert isinstance(final, Failed) and (final.sip_code, final.outcome) == (status, outcome), final
    finally:
        await switch.stop()


async def test_refreshed_registration_extends_the_one_binding(pjsua) -> None:  # type: ignore[no-untyped-def]
    """A re-REGISTER (same Call-ID, higher CSeq; PJSIP does not reuse its nonce, so it is challenged afresh) renews
    the phone's binding instead of adding another; the unREGISTER at shutdown removes it."""
    switch = await start_switch(None, [AGENT])
    try:
        ua = await register(pjsua, "agent", registrar=f"127.0.0.1:{switch.local_port()}")
        [first] = switch.registrar.lookup("agent5", switch.endpoint.now)
        await asyncio.sleep(0.5)
        ua.command("register")
        for _ in range(100):
            if len([e for e in ua.events if e["event"] == "registered"]) >= 2:
                break
            await asyncio.sleep(0.05)
        assert [e["code"] for e in ua.events if e["event"] == "registered"] == [200, 200], ua.events
        [renewed] = switch.registrar.lookup("agent5", switch.endpoint.now)
        assert renewed.call_id == first.call_id and renewed.cseq > first.cseq
        assert renewed.expires_at - first.expires_at >= 0.4
        await ua.stop()
        assert switch.registrar.lookup("agent5", switch.endpoint.now) == []
    finally:
        await switch.stop()
