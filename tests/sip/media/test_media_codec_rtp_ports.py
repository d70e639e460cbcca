import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.media import g711
from sip.media.ports import PortPool, PortsExhausted
from sip.media.rtp import RtpError, RtpPacket, build_rtp, looks_like_rtcp, parse_rtp


@given(
    pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=200), marker=st.booleans(), csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15),
    ext=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4])),
)
def test_rtp_round_trip(pt, seq, ts, ssrc, payload, marker, csrcs, ext):
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs), ext)
    assert parse_rtp(packet.serialize()) == packet


def test_rtp_padding_is_stripped_and_bad_packets_are_refused():
    raw = bytearray(build_rtp(0, 1, 2, 3, b"abc" + b"\x00\x00\x03"))
    raw[0] |= 0x20
    assert parse_rtp(bytes(raw)).payload == b"abc"
    with pytest.raises(RtpError, match="shorter"):
        parse_rtp(b"\x80\x00")
    with pytest.raises(RtpError, match="version"):
        parse_rtp(b"\x40" + bytes(11))
    assert looks_like_rtcp(b"\x80\xc8" + bytes(6)) and not looks_like_rtcp(build_rtp(0, 1, 2, 3, b""))


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_round_trip_error_is_within_quantisation(codec):
    pcm = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 20000).astype(np.int16)
    decoded = g711.decode(g711.encode(pcm, codec), codec).astype(np.int32)
    error = np.abs(decoded - pcm)
    assert np.all(error <= np.maximum(np.abs(pcm.astype(np.int32)) // 16, 16))  # G.711 keeps ~4 mantissa bits
    assert g711.decode(bytes([g711.SILENCE[codec]]), codec)[0] in (0, 8, -8)


def test_g711_matches_the_reference_implementation_when_audioop_exists():
    audioop = pytest.importorskip("audioop", reason="audioop is gone in Python >= 3.13")
    samples = np.arange(-32768, 32768, dtype=np.int16)
    assert g711.encode(samples, "PCMU") == audioop.lin2ulaw(samples.tobytes(), 2)
    assert g711.encode(samples, "PCMA") == audioop.lin2alaw(samples.tobytes(), 2)
    assert g711.decode(bytes(range(256)), "PCMA").tobytes() == audioop.alaw2lin(bytes(range(256)), 2)
    assert g711.decode(bytes(range(256)), "PCMU").tobytes() == audioop.ulaw2lin(bytes(range(256)), 2)


def test_transcode_tables_preserve_the_signal():
    pcm = (np.sin(np.arange(800) * 0.3) * 12000).astype(np.int16)
    ulaw = g711.encode(pcm, "PCMU")
    alaw = ulaw.translate(g711.transcode_table("PCMU", "PCMA"))
    assert np.max(np.abs(g711.decode(alaw, "PCMA").astype(int) - pcm)) < 800
    assert g711.transcode_table("PCMA", "PCMA") is None
    with pytest.raises(ValueError, match="unsupported codec"):
        g711.encode(pcm, "G729")


def test_port_pool_gives_even_ports_and_reports_exhaustion():
    pool = PortPool(40001, 40007)  # even ports 40002, 40004 (40006 would need 40007 for RTCP: it fits)
    ports = [pool.acquire() for _ in range(pool.capacity)]
    assert ports == [40002, 40004, 40006]
    with pytest.raises(PortsExhausted, match="all 3 RTP port pairs in 40001-40007"):
        pool.acquire()
    pool.release(40004)
    assert pool.acquire() == 40004
    with pytest.raises(ValueError, match="not allocated"):
        pool.release(40010)
    with pytest.raises(ValueError, match="no even/odd port pair"):
        PortPool(40001, 40002)


def test_rtp_settings_refuse_a_wildcard_bind_without_advertised_address():
    from pydantic import ValidationError

    from sip.settings import RtpSettings

    with pytest.raises(ValidationError, match="advertised_host"):
        RtpSettings(bind_host="0.0.0.0")
    assert RtpSettings(bind_host="0.0.0.0", advertised_host="192.0.2.1").advertised_host == "192.0.2.1"
    with pytest.raises(ValidationError, match="port_max must be at least"):
        RtpSettings(port_min=40000, port_max=40000)
