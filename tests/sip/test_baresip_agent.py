"""baresip, a real softphone, registers as an agent (digest) and auto-answers the engine's call; its 440 Hz sine
source reaches our media leg as RTP, and a hang-up from us ends the call."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from sip.settings import RtpSettings, SipSettings
from sip.switch import AgentCredentials, Answered, Ended, Switch
from tests.conftest import require_binary
from tests.sip.conftest import free_udp_port

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]


def baresip_config(directory: Path, switch_port: int, password: str) -> None:
    rtp_base = random.randrange(33000, 34000, 2)
    (directory / "config").write_text(
        "poll_method epoll\n"
        f"sip_listen 127.0.0.1:{free_udp_port()}\n"
        "sip_transports udp\n"
        "audio_player aubridge,nil\n"
        "audio_source ausine,440\n"
        "audio_alert aubridge,nil\n"
        "ausrc_srate 48000\nausrc_channels 2\n"  # ausine only runs at 48 kHz stereo; baresip resamples
        f"rtp_ports {rtp_base}-{rtp_base + 20}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule ausine.so\nmodule aubridge.so\n"
        "module_app account.so\n")
    (directory / "accounts").write_text(
        f"<sip:agent7@127.0.0.1:{switch_port};transport=udp>;auth_pass={password};regint=60;answermode=auto\n")


async def run_baresip(directory: Path) -> asyncio.subprocess.Process:
    binary = require_binary("baresip")
    return await asyncio.create_subprocess_exec(
        binary, "-f", str(directory), "-t", "30", stdin=asyncio.subprocess.DEVNULL,
        stdout=(directory / "baresip.log").open("wb"), stderr=asyncio.subprocess.STDOUT)


async def test_baresip_registers_and_takes_a_call(tmp_path: Path) -> None:
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=1.0)
    switch = await Switch.start(sip, RtpSettings(port_min=54000, port_max=54999), [],
                                [AgentCredentials("agent7", None, "agent7", "s3cret")])
    baresip_config(tmp_path, switch.local_port(), "s3cret")
    phone = await run_baresip(tmp_path)
    try:
        for _ in range(300):  # the machine is shared: give the phone up to 15 s to register
            if switch.registrar.lookup("agent7", switch.endpoint.now):
                break
            await asyncio.sleep(0.05)
        assert switch.registrar.lookup("agent7", switch.endpoint.now), "baresip did not register"
        agent = await switch.call_agent("agent7")
        async for event in agent.events():
            if isinstance(event, Answered):
                break
        await asyncio.sleep(0.6)
        assert agent.leg.stats.packets_in >= 10  # the 440 Hz sine flows to us as G.711
        await switch.hangup(agent)
        ended = await asyncio.wait_for(asyncio.shield(agent.done), 5)
        assert isinstance(ended, Ended) and ended.by == "local"
    finally:
        phone.kill()
        await phone.wait()
        await switch.stop()


async def test_baresip_with_a_wrong_password_is_not_registered(tmp_path: Path) -> None:
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=0.5)
    switch = await Switch.start(sip, RtpSettings(port_min=54000, port_max=54999), [],
                                [AgentCredentials("agent7", None, "agent7", "s3cret")])
    baresip_config(tmp_path, switch.local_port(), "not-the-password")
    phone = await run_baresip(tmp_path)
    try:
        await asyncio.sleep(1.5)
        assert switch.registrar.lookup("agent7", switch.endpoint.now) == []
    finally:
        phone.kill()
        await phone.wait()
        await switch.stop()
