"""A call on a TLS trunk: the carrier (our own endpoint behind a self-signed certificate) is verified against
the configured CA file, and the whole INVITE/200/ACK/BYE exchange runs over one TLS connection."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from sip.endpoint import SipEndpoint
from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import Answered, Ended, Failed, Switch
from sip.transaction import Timers
from tests.conftest import require_binary
from tests.sip.fake_carrier import Carrier


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_binary("openssl")
    cert, key = tmp_path / "carrier.pem", tmp_path / "carrier.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


async def tls_carrier(cert: Path, key: Path) -> tuple[Carrier, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    endpoint = SipEndpoint(Timers(0.05, 0.4, 0.5))
    await endpoint.start(("127.0.0.1",), 0, ("udp", "tls"), tls_server=context)
    carrier = Carrier(endpoint)
    carrier.challenge_invites = False
    return carrier, next(local.port for (kind, _), local in endpoint.transport.locals.items() if kind == "tls")


@pytest.mark.parametrize("verified", [True, False])
async def test_call_over_tls_trunk(certificate: tuple[Path, Path], verified: bool) -> None:
    cert, key = certificate
    carrier, port = await tls_carrier(cert, key)
    other_ca = certificate[0].parent / "empty-ca.pem"
    if not verified:  # a CA that did not sign the carrier: the handshake must fail
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x",
                        "-keyout", str(other_ca.with_suffix(".key")), "-out", str(other_ca)],
                       check=True, capture_output=True, timeout=30)
    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp", "tcp"), t1_ms=50, stop_grace_s=0.5,
                      tls_ca_file=str(cert if verified else other_ca))
    trunk = TrunkSettings(name="secure", host="127.0.0.1", port=port, transport="tls", options_enabled=False)
    switch = await Switch.start(sip, RtpSettings(port_min=55000, port_max=55999), [trunk], [])
    try:
        call = await switch.originate("secure", "+15551230200", "+15550001111", {}, 5)
        first = await asyncio.wait_for(call.events().__anext__(), 8)
        if verified:
            assert isinstance(first, Answered)
            invite = next(r for r in carrier.seen if r.method == "INVITE")
            assert invite.via.transport == "TLS" and invite.uri.transport == "tls"
            await switch.hangup(call)
            assert isinstance(await asyncio.wait_for(asyncio.shield(call.done), 3), Ended)
        else:
            # nothing was sent in clear or to a fake, and the failure is a fast 503, not a 32 s Timer B
            assert isinstance(first, Failed) and first.sip_code == 503 and first.outcome == "congestion"
            assert not carrier.seen
    finally:
        await switch.stop()
        await carrier.endpoint.close()
