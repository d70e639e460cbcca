import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.media.sdp import SdpError, SdpNegotiationError, SdpNegotiator, parse_sdp

LINPHONE_OFFER = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=Talk\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 8 0 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ptime:30\r\nm=video 51372 RTP/AVP 31\r\n"
)


def negotiator(**kw) -> SdpNegotiator:
    return SdpNegotiator("127.0.0.1", 40000, **kw)


def test_parse_reads_codecs_dtmf_ptime_and_connection():
    sdp = parse_sdp(LINPHONE_OFFER)
    audio = sdp.media[0]
    assert audio.payload_types() == (8, 0, 96, 101)
    assert audio.encoding_of(0).encoding == "PCMU" and audio.encoding_of(96).channels == 2
    assert audio.fmtps[101] == "0-16" and audio.ptime_ms == 30
    assert sdp.connection_for(audio).address == "192.0.2.10"
    assert sdp.direction_for(audio) == "sendrecv"


def test_build_then_parse_round_trips():
    offer = negotiator().make_offer()
    again = parse_sdp(offer.serialize())
    assert again == offer
    assert "m=audio 40000 RTP/AVP 0 8 101\r\n" in offer.serialize()
    assert "a=fmtp:101 0-16\r\n" in str(offer) and "a=ptime:20" in str(offer)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("", None, "empty"),
        ("v=1\r\n", 1, "v=0"),
        ("v=0\r\no=x 1 1 IN IP4\r\n", 2, "o= needs 6 fields"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 999.1.1.1\r\n", 4, "not an IP address"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\n", 4, "does not match"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 7x RTP/AVP 0\r\n", 4, "port"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000 RTP/AVP 0\r\n", None, "no c= line"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\nbogus\r\n", 3, "expected '<type>=<value>'"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
         6, "rtpmap"),
        ("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 300\r\n", 5, "payload type"),
    ],
)
def test_malformed_sdp_names_the_line(text, line, needle):
    with pytest.raises(SdpError) as caught:
        parse_sdp(text)
    assert caught.value.line == line
    assert needle in str(caught.value)


def test_answer_honours_offerer_order_keeps_dtmf_pt_and_rejects_video():
    answer, result = negotiator().receive_offer(LINPHONE_OFFER)
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == ("PCMA", 8, 101)
    assert result.remote_address == ("192.0.2.10", 49170) and result.ptime_ms == 30
    assert [m.port for m in answer.media] == [40000, 0]  # video rejected with port 0
    assert answer.media[0].payload_types() == (8, 101)
    assert answer.media[1].formats == ("31",)


@pytest.mark.parametrize(
    ("offered", "ours"),
    [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_answer_direction_mirrors_the_offer(offered, ours):
    offer = negotiator().make_offer(direction=offered)
    answer, result = negotiator().receive_offer(offer.serialize())
    assert result.direction == ours
    assert answer.media[0].direction == ours


def test_offerer_applies_answer_direction_and_codec():
    a, b = negotiator(), SdpNegotiator("::1", 40002, codecs=("PCMA",))
    offer = a.make_offer()
    answer, b_result = b.receive_offer(offer)
    a_result = a.receive_answer(answer.serialize())
    assert a_result.codec == b_result.codec == "PCMA"
    assert a_result.remote_address == ("::1", 40002)
    assert "c=IN IP6 ::1" in answer.serialize()
    # hold: a re-offers sendonly, b answers recvonly, a only sends
    hold = a.make_offer(direction="sendonly")
    answer, b_result = b.receive_offer(hold)
    assert b_result.direction == "recvonly"
    assert a.receive_answer(answer).direction == "sendonly"
    resume = a.make_offer()
    answer, b_result = b.receive_offer(resume)
    assert a.receive_answer(answer).direction == b_result.direction == "sendrecv"


def test_session_version_increments_on_changed_reoffer_only():
    a = negotiator()
    first = a.make_offer().origin
    same = a.make_offer().origin
    held = a.make_offer(direction="sendonly").origin
    assert first.session_id == same.session_id == held.session_id
    assert same.session_version == first.session_version
    assert held.session_version == first.session_version + 1


def test_old_style_hold_address_means_we_do_not_send():
    offer = LINPHONE_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")
    _, result = negotiator().receive_offer(offer)
    assert not result.we_send and result.we_receive


def test_no_common_codec_is_a_negotiation_error():
    offer = LINPHONE_OFFER.replace("m=audio 49170 RTP/AVP 8 0 96 101", "m=audio 49170 RTP/AVP 96 101")
    with pytest.raises(SdpNegotiationError, match="no acceptable audio"):
        negotiator().receive_offer(offer)


def test_rejected_answer_and_answer_without_offer():
    a, b = negotiator(), negotiator()
    with pytest.raises(SdpNegotiationError, match="no offer is outstanding"):
        a.receive_answer(b.make_offer())
    a.make_offer()
    rejected = b.make_offer().serialize().replace("m=audio 40000", "m=audio 0")
    with pytest.raises(SdpNegotiationError, match="port 0"):
        a.receive_answer(rejected)


def offer_with(formats: str, extra: str = "") -> str:
    return ("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
            f"m=audio 30000 RTP/AVP {formats}\r\n{extra}")


@pytest.mark.parametrize(
    ("ours", "formats", "extra", "codec", "pt", "dtmf"),
    [
        (("PCMU", "PCMA"), "0 8", "", "PCMU", 0, None),
        (("PCMU", "PCMA"), "8 0", "", "PCMA", 8, None),  # the offerer's preference wins
        (("PCMA",), "0 8", "", "PCMA", 8, None),
        (("PCMU",), "18 0 101", "a=rtpmap:101 telephone-event/8000\r\n", "PCMU", 0, 101),
        (("PCMU",), "96 97", "a=rtpmap:96 PCMU/8000\r\na=rtpmap:97 telephone-event/8000\r\n", "PCMU", 96, 97),
        (("PCMA",), "8 100", "a=rtpmap:100 TELEPHONE-EVENT/8000\r\n", "PCMA", 8, 100),  # names are case-insensitive
        (("PCMU",), "0 101", "a=rtpmap:101 telephone-event/48000\r\n", "PCMU", 0, None),  # wrong clock: no DTMF
    ],
)
def test_codec_and_dtmf_matrix(ours, formats, extra, codec, pt, dtmf):
    _, result = SdpNegotiator("127.0.0.1", 40000, codecs=ours).receive_offer(offer_with(formats, extra))
    assert (result.codec, result.payload_type, result.dtmf_payload_type) == (codec, pt, dtmf)


@pytest.mark.parametrize(
    ("ours", "formats", "extra"),
    [(("PCMA",), "0", ""), (("PCMU",), "96", "a=rtpmap:96 PCMU/16000\r\n"), (("PCMU",), "18 9", "")],
)
def test_no_common_codec_matrix(ours, formats, extra):
    with pytest.raises(SdpNegotiationError):
        SdpNegotiator("127.0.0.1", 40000, codecs=ours).receive_offer(offer_with(formats, extra))


def test_answerer_picks_the_first_common_codec_of_the_answer_we_applied():
    ours = SdpNegotiator("127.0.0.1", 40000)
    ours.make_offer()
    answer = offer_with("8 0 101", "a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n")
    result = ours.receive_answer(answer)
    assert (result.codec, result.dtmf_payload_type, result.direction) == ("PCMA", 101, "recvonly")


SDP_LINE = st.one_of(
    st.sampled_from(["v=0", "o=- 1 2 IN IP4 1.2.3.4", "o=x y z IN IP9 a", "s=-", "c=IN IP4 1.2.3.4", "c=IN IP6 ::1",
                     "c=IN IP4 nope", "t=0 0", "m=audio 4000 RTP/AVP 0 8 101", "m=audio x RTP/AVP", "m=video 0 RTP/AVP 31",
                     "a=rtpmap:101 telephone-event/8000", "a=rtpmap:x", "a=rtpmap:0 PCMU/abc", "a=fmtp:101 0-16",
                     "a=ptime:20", "a=ptime:-1", "a=sendonly", "a=inactive", "b=AS:64", "=", "a="]),
    st.text(max_size=30),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(SDP_LINE, max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_any_input_parses_or_raises_sdp_error(lines, newline):
    try:
        sdp = parse_sdp(newline.join(lines))
    except SdpError:
        return
    try:
        SdpNegotiator("127.0.0.1", 40000).receive_offer(sdp)
    except SdpNegotiationError:
        pass


def test_srtp_is_rejected_and_avpf_answered_in_kind():
    srtp = offer_with("0").replace("RTP/AVP", "RTP/SAVP") + "m=audio 30002 RTP/AVPF 8\r\n"
    answer, result = SdpNegotiator("127.0.0.1", 40000).receive_offer(srtp)
    assert [(m.port, m.proto) for m in answer.media] == [(0, "RTP/SAVP"), (40000, "RTP/AVPF")]
    assert (result.codec, result.remote_port) == ("PCMA", 30002)
