"""Registrar bindings kept across restarts: written through on every change, restored live, dropped when expired,
and a restarted switch calls the phone registered before it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from sip.message import parse_message
from sip.registrar import Registrar
from sip.registrations import RegistrationStore, StoredBinding
from sip.settings import RtpSettings, SipSettings
from sip.switch import AgentCredentials, Switch
from tests.sip.test_auth_registrar import PHONE, authorised, register


def registered(registrar: Registrar, now: float, **kwargs) -> int:
    request = register(**kwargs)
    return registrar.handle(authorised(registrar, request, "s3cret", now), PHONE, now).status


def test_bindings_are_written_through_and_restored(tmp_path: Path) -> None:
    store = RegistrationStore(tmp_path / "registrations.db")
    registrar = Registrar("dialer", {"agent7": "s3cret"})
    registrar.on_change = lambda user, bindings: store.replace(user, [
        StoredBinding.of(b, 1000.0) for b in bindings])
    assert registered(registrar, 10.0, contact="<sip:agent7@192.0.2.50:5062>", expires="600") == 200
    assert registered(registrar, 11.0, contact="<sip:agent7@192.0.2.51:5070;transport=tcp>", expires="120",
                      call_id="reg-2") == 200
    store.close()

    reopened = RegistrationStore(tmp_path / "registrations.db")
    kept = {str(b.contact.uri): b for b in reopened.load(now_unix=1000.0 + 20.0)}
    assert set(kept) == {"sip:agent7@192.0.2.50:5062", "sip:agent7@192.0.2.51:5070;transport=tcp"}
    assert kept["sip:agent7@192.0.2.50:5062"].expires_at_unix == 1000.0 + 610.0
    assert kept["sip:agent7@192.0.2.50:5062"].source == PHONE
    # 131 s after the second REGISTER its 120 s binding has expired: it is neither restored nor kept
    assert [str(b.contact.uri) for b in reopened.load(now_unix=1000.0 + 11.0 + 121.0)] == [
        "sip:agent7@192.0.2.50:5062"]
    assert len(reopened.load(now_unix=0.0)) == 1


def test_unregister_removes_the_kept_binding(tmp_path: Path) -> None:
    store = RegistrationStore(tmp_path / "registrations.db")
    registrar = Registrar("dialer", {"agent7": "s3cret"})
    registrar.on_change = lambda user, bindings: store.replace(user, [StoredBinding.of(b, 0.0) for b in bindings])
    assert registered(registrar, 10.0, expires="600") == 200
    assert len(store.load(now_unix=20.0)) == 1
    assert registered(registrar, 12.0, expires="0", cseq=2) == 200
    assert store.load(now_unix=20.0) == []


async def test_a_restarted_switch_calls_the_phone_registered_before_it(tmp_path: Path) -> None:
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.setblocking(False)
    phone_port = phone.getsockname()[1]
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=0.2)
    rtp = RtpSettings(port_min=56000, port_max=56999)
    agents = [AgentCredentials("a7", None, "agent7", "s3cret")]
    path = tmp_path / "registrations.db"

    first = await Switch.start(sip, rtp, [], agents, RegistrationStore(path))
    request = register(contact=f"<sip:agent7@127.0.0.1:{phone_port}>", expires="600")
    now = first.endpoint.now
    ok = first.registrar.handle(authorised(first.registrar, request, "s3cret", now), PHONE, now)
    assert ok.status == 200
    await first.stop()

    second = await Switch.start(sip, rtp, [], agents, RegistrationStore(path))
    try:
        [binding] = second.registrar.lookup("agent7", second.endpoint.now)
        assert 590 <= binding.remaining_s(second.endpoint.now) <= 600
        call = await second.call_agent("a7")
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(phone, 65535), 5)
        invite = parse_message(data)
        assert invite.method == "INVITE" and invite.uri.port == phone_port
        await second.hangup(call)
    finally:
        phone.close()
        await second.stop()
