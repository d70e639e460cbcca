"""baresip, a softphone no one here wrote, as the agents' phone: one baresip with two accounts registers to our
registrar with digest credentials (agent7's password right, agent8's wrong: only agent7 gets a binding), auto-answers
Switch.call_agent("agent7"), and is bridged to a pjsua2 callee. RTP flows both ways (the legs' counters climb at the
packet rate), each side hears the other's tone, and the call ends from either side."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from sip.media.make_default_announcement import NOTES_HZ
from sip.switch import AgentCredentials, Ended, Switch
from tests.conftest import require_binary
from tests.ports import free_port
from tests.sip.peers.harness import (
    ANNOUNCEMENT, CALLEE_HZ, PACKETS_PER_S, answered, assert_tone, dominant_per_block, read_wav, runs, start_switch,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(90)]

BARESIP_HZ = 1000  # ausine's frequency
BARESIP_RTP = (53000, 53998)
REGISTER_TIMEOUT_S = 15.0  # the machine is shared: baresip may take a while to start
AGENTS = [AgentCredentials("agent7", None, "agent7", "right-7"), AgentCredentials("agent8", None, "agent8", "right-8")]


class Baresip:
    """A baresip process with its own config directory: null audio (ausine source, aubridge player), received audio
    dumped to WAV by sndfile, commands over ctrl_tcp."""

    def __init__(self, directory: Path, registrar_port: int, passwords: dict[str, str], *, host: str = "127.0.0.1",
                 transport: str = "udp") -> None:
        self.directory = directory
        self.ipv6 = ":" in host
        hostport = f"[{host}]" if self.ipv6 else host
        self.control_port = free_port()
        rtp_base = random.randrange(BARESIP_RTP[0], BARESIP_RTP[1] - 40, 2)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "dumps").mkdir(exist_ok=True)
        (directory / "config").write_text("\n".join([
            "poll_method epoll", f"sip_listen {hostport}:{free_port(host)}", f"sip_transports {transport}",
            "audio_player aubridge,nil", f"audio_source ausine,{BARESIP_HZ}", "audio_alert aubridge,nil",
            "ausrc_srate 48000", "ausrc_channels 2",  # ausine only runs at 48 kHz stereo; baresip resamples
            f"rtp_ports {rtp_base}-{rtp_base + 40}", f"snd_path {directory / 'dumps'}",
            f"ctrl_tcp_listen 127.0.0.1:{self.control_port}", "module_path /usr/lib/baresip/modules",
            "module g711.so", "module ausine.so", "module aubridge.so", "module sndfile.so",
            "module_app account.so", "module_app menu.so", "module_app ctrl_tcp.so", ""]))
        (directory / "accounts").write_text("".join(
            f"<sip:{user}@{hostport}:{registrar_port};transport={transport}>;auth_pass={password};regint=60;"
            "answermode=auto\n"
            for user, password in passwords.items()))
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Baresip:
        binary = require_binary("baresip")
        self.process = await asyncio.create_subprocess_exec(
            binary, "-6" if self.ipv6 else "-4", "-f", str(self.directory), "-t", "60", stdin=asyncio.subprocess.DEVNULL,
            stdout=(self.directory / "baresip.log").open("wb"), stderr=asyncio.subprocess.STDOUT)
        return self

    async def command(self, command: str) -> dict:
        """One ctrl_tcp command (JSON in a netstring); the response that carries our token."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        body = json.dumps({"command": command, "params": "", "token": "t1"}).encode()
        writer.write(b"%d:%s," % (len(body), body))
        try:
            while True:
                length = int((await reader.readuntil(b":"))[:-1])
                message = json.loads((await reader.readexactly(length + 1))[:-1])
                if message.get("response") and message.get("token") == "t1":
                    return message
        finally:
            writer.close()

    def received_audio(self) -> Path:
        dumps = sorted((self.directory / "dumps").glob("dump-*-dec.wav"))
        assert len(dumps) == 1, f"expected one call's dump of received audio, found {dumps}"
        return dumps[0]

    def log(self) -> str:
        return (self.directory / "baresip.log").read_text(errors="replace")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                await asyncio.wait_for(self.command("quit"), 2)
                await asyncio.wait_for(self.process.wait(), 3)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                self.process.kill()
                await self.process.wait()


async def registered(switch: Switch, user: str, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if switch.registrar.lookup(user, switch.endpoint.now):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("hung_up_by", ["switch", "agent"])
async def test_baresip_agent_registers_answers_and_is_bridged(pjsua, tmp_path: Path, hung_up_by: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee", tone_hz=CALLEE_HZ)
    switch = await start_switch(callee_ua, AGENTS)
    phone = Baresip(tmp_path / "baresip", switch.local_port(), {"agent7": "right-7", "agent8": "wrong-8"})
    await phone.start()
    try:
        assert await registered(switch, "agent7", REGISTER_TIMEOUT_S), f"agent7 did not register: {phone.log()[-3000:]}"
        assert not await registered(switch, "agent8", 1.0), "agent8 registered with a wrong password"
        assert any("reg: sip:agent8@" in line and "401 Unauthorized" in line for line in phone.log().splitlines())

        callee = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        await asyncio.wait_for(answered(callee), 10)
        agent = await switch.call_agent("agent7")
        await asyncio.wait_for(answered(agent), 10)
        recording = tmp_path / "call.wav"
        await switch.bridge(callee, agent, recording)
        counters = []
        for _ in range(3):
            await asyncio.sleep(1.0)
            counters.append((agent.leg.stats.packets_in, agent.leg.stats.packets_relayed, agent.leg.stats.packets_out))
        print(f"agent leg (packets in, relayed, out) each second: {counters}; lost {agent.leg.stats.lost}")
        for before, after in zip(counters, counters[1:]):
            assert all(b - a >= PACKETS_PER_S * 0.7 for a, b in zip(before, after)), counters

        if hung_up_by == "switch":
            await switch.hangup(agent)
            ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
            assert ended == Ended(agent.call_id, "local", "normal")
        else:
            response = await phone.command("hangup")
            assert response["ok"] is True, response
            ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
            assert isinstance(ended, Ended) and ended.by == "remote"
        assert callee.state == "answered"  # the callee's leg is the engine's to end
        await switch.hangup(callee)
        await asyncio.wait_for(asyncio.shield(callee.done), 5)
        await callee_ua.wait_for("stopped", 5)
        await phone.stop()
        assert phone.process is not None and phone.process.returncode == 0  # quit cleanly, not killed
    finally:
        await phone.stop()
        await switch.stop()
    assert callee_ua.recording is not None
    assert_tone(callee_ua.recording, 0, BARESIP_HZ, "pjsua callee heard baresip")
    samples_path = phone.received_audio()
    assert_tone(samples_path, 0, CALLEE_HZ, "baresip heard the callee")
    assert_tone(recording, 0, CALLEE_HZ, "recording, callee channel")
    assert_tone(recording, 1, BARESIP_HZ, "recording, agent channel")


@pytest.mark.parametrize(("host", "transport"), [("127.0.0.1", "tcp"), ("::1", "udp")], ids=["tcp", "ipv6"])
async def test_baresip_agent_over_tcp_and_ipv6(tmp_path: Path, host: str, transport: str) -> None:
    """REGISTER and the engine's INVITE over TCP, or over UDP and RTP on IPv6: baresip answers, its RTP reaches us,
    and the announcement we play reaches it (its received-audio dump holds the chime's notes)."""
    switch = await start_switch(None, AGENTS[:1], sip={"bind_host": host}, rtp={"bind_host": host})
    phone = Baresip(tmp_path / "baresip", switch.local_port(transport), {"agent7": "right-7"}, host=host,
                    transport=transport)
    await phone.start()
    try:
        assert await registered(switch, "agent7", REGISTER_TIMEOUT_S), f"agent7 did not register: {phone.log()[-3000:]}"
        bindings = switch.registrar.lookup("agent7", switch.endpoint.now)
        assert bindings and all(b.source.transport == transport and b.source.host == host for b in bindings), bindings
        agent = await switch.call_agent("agent7")
        await asyncio.wait_for(answered(agent), 10)
        await switch.play(agent, ANNOUNCEMENT)
        assert agent.leg.stats.packets_in >= PACKETS_PER_S * 2.5 * 0.7  # baresip's sine came in meanwhile
        # baresip's SDP names its default interface (on this machine not loopback); we send where its RTP comes from
        assert agent.leg.negotiated is not None
        print(f"baresip SDP address {agent.leg.negotiated.remote_address}, RTP source {agent.leg.remote_address}")
        assert agent.leg.remote_address is not None and agent.leg.remote_address[0] == host
        await switch.hangup(agent)
        ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
        assert ended == Ended(agent.call_id, "local", "normal")
        await phone.stop()
    finally:
        await phone.stop()
        await switch.stop()
    samples, rate = read_wav(phone.received_audio())
    heard = runs(dominant_per_block(samples[:, 0], rate, 0.1))
    print(f"baresip over {transport} on {host} heard {heard}")
    assert len(heard) == 6 and all(abs(h - e) <= 15 for h, e in zip(heard, 2 * NOTES_HZ)), heard
