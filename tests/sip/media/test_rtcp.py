"""RTCP (RFC 3550 section 6): compound packets as built and parsed, and the reports a leg sends on what it receives
(loss, jitter, LSR/DLSR echo), to the address its remote reports from, ending with a BYE."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_peers import call, media_settings

from sip.media.engine import MediaEngine
from sip.media.rtcp import (
    BYE, RR, SDES, SR, ReportBlock, RtcpError, SenderInfo, build_report, ntp_timestamp, parse_reports,
)


def packet_types(compound: bytes) -> list[int]:
    types, offset = [], 0
    while offset < len(compound):
        first, packet_type, words = struct.unpack_from("!BBH", compound, offset)
        assert first >> 6 == 2
        types.append(packet_type)
        offset += 4 * (words + 1)
    assert offset == len(compound)
    return types


def test_sender_report_round_trip_with_blocks_and_sdes() -> None:
    sender = SenderInfo(*ntp_timestamp(1_700_000_000.25), rtp_timestamp=123_456, packets=500, octets=80_000)
    blocks = (ReportBlock(0xAABBCCDD, 25, 7, 0x1_0005, 42, 0x1234_5678, 65536),
              ReportBlock(0x01020304, 0, -3, 17, 0, 0, 0))  # duplicates make cumulative loss negative
    compound = build_report(0xCAFEBABE, "dialer-test@192.0.2.1", sender, blocks)
    assert packet_types(compound) == [SR, SDES]
    assert b"dialer-test@192.0.2.1" in compound
    [report] = parse_reports(compound)
    assert report.ssrc == 0xCAFEBABE and report.sender == sender and report.blocks == blocks
    assert sender.ntp_seconds == 1_700_000_000 + 2_208_988_800 and sender.ntp_fraction == 1 << 30
    assert sender.compact_ntp == ((sender.ntp_seconds & 0xFFFF) << 16) | 0x4000


def test_receiver_report_without_blocks_and_bye() -> None:
    compound = build_report(7, "x", None, (), bye=True)
    assert packet_types(compound) == [RR, SDES, BYE]
    assert parse_reports(compound)[0].sender is None and parse_reports(compound)[0].blocks == ()


@pytest.mark.parametrize("data", [b"", b"\x80\xc8", b"\x40\xc9\x00\x01" + bytes(4), b"\x80\xc9\x00\x05" + bytes(4),
                                  b"\x81\xc9\x00\x01" + bytes(4)])
def test_malformed_compounds_are_refused(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_reports(data)


@given(st.binary(max_size=200))
def test_any_datagram_parses_or_is_refused_as_rtcp_error(data: bytes) -> None:
    try:
        parse_reports(data)
    except RtcpError:
        pass


async def test_leg_reports_loss_jitter_and_echoes_the_remotes_report(peers) -> None:  # type: ignore[no-untyped-def]
    engine = MediaEngine(media_settings(rtcp_interval_s=0.05))
    remote_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    remote_rtcp.bind(("127.0.0.1", 0))
    remote_rtcp.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        leg, peer = await call(engine, peers, "callee")
        their_sr = SenderInfo(*ntp_timestamp(1_700_000_000.5), 0, 0, 0)
        # the remote reports from its own RTCP socket first: the leg latches it and reports there (symmetric)
        remote_rtcp.sendto(build_report(peer.ssrc, "remote", their_sr), (leg.local_address[0], leg.port + 1))
        sent_at = loop.time()
        lost = frozenset({1003, 1010, 1011, 1020, 1030})
        # 5 ms apart while the timestamps step 20 ms: each packet's transit shifts 15 ms = 120 timestamp units
        await peer.send_tone(440, 50, spacing_s=0.005, skip=lost)
        last_sequence = peer.seq - 1
        report = None
        while loop.time() - sent_at < 3:
            data = await asyncio.wait_for(loop.sock_recv(remote_rtcp, 2048), 3)
            assert SDES in packet_types(data)
            [report] = parse_reports(data)
            if report.blocks and report.blocks[0].highest_sequence == last_sequence:
                break
        assert report is not None and report.sender is None  # the leg has sent no RTP: a receiver report
        [block] = report.blocks
        assert block.ssrc == peer.ssrc and block.cumulative_lost == len(lost)
        assert 80 <= block.jitter <= 130
        assert block.last_sr == their_sr.compact_ntp
        assert 0 < block.delay_since_last_sr < 3 * 65536  # 1/65536 s since their SR reached us
        assert leg.stats.rtcp_received == 1 and leg.stats.rtcp_sent >= 1

        engine.release(leg)
        while True:  # the last compound says BYE
            data = await asyncio.wait_for(loop.sock_recv(remote_rtcp, 2048), 3)
            if BYE in packet_types(data):
                break
    finally:
        remote_rtcp.close()
        await engine.close()


async def test_reports_from_a_stranger_are_ignored(engine, peers) -> None:  # type: ignore[no-untyped-def]
    leg, _ = await call(engine, peers, "callee")
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    try:
        stranger.sendto(build_report(1, "stranger", SenderInfo(1, 2, 3, 4, 5)), (leg.local_address[0], leg.port + 1))
        await asyncio.sleep(0.1)
        assert leg.stats.rtcp_received == 0 and leg._rtcp_source is None and leg._last_sr == 0
    finally:
        stranger.close()
