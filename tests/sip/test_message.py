"""RFC 3261 message parsing and building, RFC 4475 torture messages, and a fuzzed parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sip.errors import SipParseError
from sip.headers import parse_name_addr, split_list
from sip.message import Request, Response, StreamParser, error_response_for, parse_message

DATA = Path(__file__).parent / "data"
VALID = sorted((DATA / "valid").glob("*.sip"))
INVALID = sorted((DATA / "invalid").glob("*.sip"))

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    b"f: \"Alice, A.\" <sip:alice@example.com>;tag=a1\r\n"
    b"t: <sip:bob@example.com>\r\n"
    b"i: call-1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"m: <sip:alice@192.0.2.1>\r\n"
    b"l: 4\r\n\r\nbody"
)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_rfc4475_valid_messages_parse(path: Path) -> None:
    message = parse_message(path.read_bytes())
    assert message.call_id
    assert message.cseq.number >= 0
    assert message.vias


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_rfc4475_invalid_messages_are_refused(path: Path) -> None:
    with pytest.raises(SipParseError):
        parse_message(path.read_bytes())


def test_wsinv_details() -> None:
    message = parse_message((DATA / "valid" / "wsinv.sip").read_bytes())
    assert isinstance(message, Request)
    assert str(message.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert message.to.tag == "1918181833n"
    assert message.from_.display == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    assert message.cseq.number == 9 and message.cseq.method == "INVITE"
    assert [v.sent_by for v in message.vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert message.vias[1].branch == "z9hG4bK9ikj8" and message.vias[2].branch == "z9hG4bK30239"
    assert message.headers.get("Subject") == ""
    assert message.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    contact = message.contacts[0]
    assert contact.display == 'Quoted string ""' and contact.param("newparam") == "newvalue"
    assert contact.param("q") == "0.33" and contact.param("secondparam") == ""
    assert message.routes[0].uri.has_param("lr")
    assert len(message.body) == message.content_length


def test_longreq_has_34_vias_and_semiuri_user() -> None:
    assert len(parse_message((DATA / "valid" / "longreq.sip").read_bytes()).vias) == 34
    semiuri = parse_message((DATA / "valid" / "semiuri.sip").read_bytes())
    assert isinstance(semiuri, Request) and semiuri.uri.user == "user;par=u%40example.net"
    assert semiuri.headers.get_all("Accept")[-1] == "message/sipfrag"


def test_badvers_gets_505_and_mismatch_gets_400() -> None:
    with pytest.raises(SipParseError) as version:
        parse_message((DATA / "invalid" / "badvers.sip").read_bytes())
    assert version.value.status == 505
    data = (DATA / "invalid" / "mismatch01.sip").read_bytes()
    with pytest.raises(SipParseError) as mismatch:
        parse_message(data)
    response = error_response_for(data, mismatch.value)
    assert response is not None and response.status == 400
    assert response.headers.get("Call-ID") == "mismatch01.dj0234sxdfl3"


def test_malformed_response_is_not_answered() -> None:
    data = (DATA / "invalid" / "bigcode.sip").read_bytes()
    with pytest.raises(SipParseError) as error:
        parse_message(data)
    assert error_response_for(data, error.value) is None


def test_compact_forms_quotes_and_ipv6() -> None:
    message = parse_message(INVITE.replace(b"192.0.2.1:5060", b"[2001:db8::1]:5062"))
    assert message.via.host == "[2001:db8::1]" and message.via.port == 5062
    assert message.from_.display == "Alice, A." and message.from_.tag == "a1"
    assert message.call_id == "call-1" and message.body == b"body"
    assert message.contacts[0].uri.host == "192.0.2.1"


def test_comma_split_respects_quotes_and_angle_brackets() -> None:
    value = '"a,b" <sip:x@y;p=1,2>;q=1, <sip:z@w>'
    assert split_list(value) == ['"a,b" <sip:x@y;p=1,2>;q=1', "<sip:z@w>"]


def test_build_round_trips() -> None:
    response = Response(180, headers=[("Via", "SIP/2.0/UDP h;branch=z9hG4bKx"), ("To", "<sip:b@h>;tag=t"),
                                      ("From", "<sip:a@h>;tag=f"), ("Call-ID", "c"), ("CSeq", "2 INVITE")])
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response) and parsed.status == 180 and parsed.reason == "Ringing"
    assert parsed.to.tag == "t" and parsed.content_length == 0
    assert str(parse_name_addr('"Q \\"x\\"" <sip:a@b>;tag=1')) == '"Q \\"x\\"" <sip:a@b>;tag=1'


def test_stream_parser_frames_by_content_length() -> None:
    parser = StreamParser()
    stream = b"\r\n\r\n" + INVITE + INVITE
    out = []
    for i in range(0, len(stream), 7):
        out += parser.feed(stream[i : i + 7])
    assert [type(m) for m in out] == [Request, Request]
    assert all(m.body == b"body" for m in out)


def test_stream_parser_reports_bad_frame_and_continues() -> None:
    parser = StreamParser()
    bad = INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE")
    out = parser.feed(bad + INVITE)
    assert isinstance(out[0], SipParseError) and isinstance(out[1], Request)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_raise_parse_error(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError:
        pass
    StreamParser().feed(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(INVITE) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_fuzz_mutated_invite_only_raises_parse_error(position: int, noise: bytes, replace: bool) -> None:
    data = INVITE[:position] + noise + INVITE[position + (len(noise) if replace else 0) :]
    try:
        message = parse_message(data)
        _ = (message.contacts, message.record_routes, message.routes)
    except SipParseError as error:
        error_response_for(data, error)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(INVITE) * 3), max_size=12))
def test_fuzz_stream_parser_is_independent_of_segmentation(cuts: list[int]) -> None:
    stream = INVITE * 3
    parser = StreamParser()
    out = []
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        out += parser.feed(stream[start:cut])
        start = max(start, cut)
    assert [m.to_bytes() for m in out] == [parse_message(INVITE).to_bytes()] * 3


def test_more_rfc4475_semantics() -> None:
    novelsc = (DATA / "invalid" / "novelsc.sip").read_bytes()
    with pytest.raises(SipParseError) as scheme:
        parse_message(novelsc)
    assert scheme.value.status == 416
    answer = error_response_for(novelsc, scheme.value)
    assert answer is not None and answer.status == 416
    unkscm = parse_message((DATA / "valid" / "unkscm.sip").read_bytes())
    assert unkscm.to.uri.scheme == "nobodyknowsthisscheme" and unkscm.to.uri.opaque == "totallyopaquecontent"
    dblreq = parse_message((DATA / "valid" / "dblreq.sip").read_bytes())
    assert isinstance(dblreq, Request) and dblreq.method == "REGISTER" and dblreq.body == b""
    esc02 = parse_message((DATA / "valid" / "esc02.sip").read_bytes())
    assert isinstance(esc02, Request) and esc02.method == "RE%47IST%45R" and len(esc02.contacts) == 2
    insuf = (DATA / "invalid" / "insuf.sip").read_bytes()
    with pytest.raises(SipParseError) as missing:
        parse_message(insuf)
    reply = error_response_for(insuf, missing.value)
    assert reply is not None and reply.status == 400 and reply.headers.get("CSeq") == "193942 INVITE"
