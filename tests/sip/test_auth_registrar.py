"""Digest (RFC 2617/7616 vectors, client retry, server nonces) and the registrar."""

from __future__ import annotations

from sip.auth import DigestServer, authorization_for, compute_response, parse_auth_params
from sip.message import Request, Response, make_response
from sip.registrar import Registrar
from sip.transaction import Address

PHONE = Address("udp", "192.0.2.50", 5062)


def test_rfc2617_md5_vector() -> None:
    assert compute_response(algorithm="MD5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET", uri="/dir/index.html",
                            qop="auth", nc="00000001", cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_sha256_and_md5_vectors() -> None:
    common = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life",
                  nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", method="GET", uri="/dir/index.html",
                  qop="auth", nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert compute_response(algorithm="SHA-256", **common) == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert compute_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"


def register(user: str = "agent7", *, contact: str = "<sip:agent7@192.0.2.50:5062>", cseq: int = 1,
             expires: str | None = None, call_id: str = "reg-1") -> Request:
    headers = [("Via", f"SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bKr{cseq}"), ("From", f"<sip:{user}@dialer>;tag=p1"),
               ("To", f"<sip:{user}@dialer>"), ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER"), ("Contact", contact)]
    if expires is not None:
        headers.append(("Expires", expires))
    return Request("REGISTER", "sip:dialer", headers)


def authorised(registrar: Registrar, request: Request, password: str, now: float, nc: int = 1) -> Request:
    challenge = registrar.handle(request, PHONE, now)
    assert challenge.status == 401
    header, value = authorization_for(challenge, request, request.to.uri.user or "", password, nc=nc)  # type: ignore[misc]
    request.headers.add(header, value)
    return request


def test_client_answers_the_strongest_challenge_with_qop() -> None:
    server = DigestServer("carrier", algorithms=("MD5", "SHA-256"))
    request = register()
    response = make_response(request, 407)
    for value in server.challenges(0.0):
        response.headers.add("Proxy-Authenticate", value)
    header, value = authorization_for(response, request, "agent7", "pw")  # type: ignore[misc]
    assert header == "Proxy-Authorization"
    scheme, params = parse_auth_params(value)
    assert params["algorithm"] == "SHA-256" and params["qop"] == "auth" and params["nc"] == "00000001"
    request.headers.add(header, value)
    assert server.verify(request, {"agent7": "pw"}.get, 1.0, header="Proxy-Authorization").ok


def test_register_good_credentials_multiple_contacts_expiry_and_unregister() -> None:
    registrar = Registrar("dialer", {"agent7": "s3cret"}, min_expires_s=60)
    ok = registrar.handle(authorised(registrar, register(expires="600"), "s3cret", 0.0), PHONE, 0.0)
    assert ok.status == 200 and ok.contacts[0].param("expires") == "600"
    second = register(contact="<sip:agent7@192.0.2.51:5062>;expires=120", cseq=2, call_id="reg-2")
    ok2 = registrar.handle(authorised(registrar, second, "s3cret", 10.0), PHONE, 10.0)
    assert len(ok2.contacts) == 2
    assert [b.contact.uri.host for b in registrar.lookup("agent7", 20.0)] == ["192.0.2.50", "192.0.2.51"]
    assert [b.contact.uri.host for b in registrar.lookup("agent7", 200.0)] == ["192.0.2.50"]  # the 120 s one expired
    remove = register(contact="*", expires="0", cseq=3)
    assert registrar.handle(authorised(registrar, remove, "s3cret", 30.0), PHONE, 30.0).status == 200
    assert registrar.lookup("agent7", 31.0) == []


def test_register_bad_password_unknown_user_and_replay_are_refused() -> None:
    registrar = Registrar("dialer", {"agent7": "s3cret"})
    assert registrar.handle(authorised(registrar, register(), "wrong", 0.0), PHONE, 0.0).status == 401
    assert registrar.handle(authorised(registrar, register("nobody"), "x", 0.0), PHONE, 0.0).status == 401
    good = authorised(registrar, register(), "s3cret", 0.0)
    assert registrar.handle(good, PHONE, 0.0).status == 200
    assert registrar.handle(good, PHONE, 1.0).status == 401  # same nc again: replay


def test_expired_nonce_is_stale_and_too_brief_gets_423() -> None:
    registrar = Registrar("dialer", {"agent7": "s3cret"}, nonce_ttl_s=300, min_expires_s=60)
    late = authorised(registrar, register(), "s3cret", 0.0)
    stale = registrar.handle(late, PHONE, 400.0)
    assert stale.status == 401 and "stale=true" in stale.headers.get("WWW-Authenticate", "")
    brief = registrar.handle(authorised(registrar, register(expires="10", cseq=5), "s3cret", 500.0), PHONE, 500.0)
    assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"


def test_registering_someone_elses_address_is_forbidden() -> None:
    registrar = Registrar("dialer", {"agent7": "a", "agent8": "b"})
    request = register("agent8")
    challenge = registrar.handle(request, PHONE, 0.0)
    header, value = authorization_for(challenge, request, "agent7", "a")  # type: ignore[misc]
    request.headers.add(header, value)
    assert registrar.handle(request, PHONE, 0.0).status == 403
