"""RTCP (RFC 3550 section 6): the compound reports each leg sends, and what we read from the remote's.

A leg terminates RTCP like any B2BUA that anchors media: it reports on the stream it receives from its remote
(loss, interarrival jitter, and LSR/DLSR so the remote can measure the round trip) and, when it has sent RTP, on
its own outgoing stream (sender info). Each report is a compound packet: SR or RR, then SDES with our CNAME, then
BYE when the leg is released.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
_HEADER = struct.Struct("!BBH")  # V/P/count, packet type, length in 32-bit words minus one
_SENDER_INFO = struct.Struct("!IIIII")  # NTP seconds, NTP fraction, RTP timestamp, packet count, octet count
_REPORT_BLOCK = struct.Struct("!IIIIII")  # SSRC, fraction lost << 24 | cumulative lost, ext. highest seq, jitter,
# LSR, DLSR
NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01


class RtcpError(ValueError):
    """A datagram that is not a valid RTCP compound packet."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """What a receiver says of one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # lost since the previous report, in 1/256
    cumulative_lost: int
    highest_sequence: int  # extended: cycles << 16 | highest sequence number
    jitter: int  # interarrival jitter, timestamp units
    last_sr: int  # middle 32 bits of the NTP timestamp of the last SR received from the source, 0 if none
    delay_since_last_sr: int  # 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderInfo:
    ntp_seconds: int
    ntp_fraction: int
    rtp_timestamp: int
    packets: int
    octets: int

    @property
    def compact_ntp(self) -> int:
        """The middle 32 bits of the NTP timestamp: what a receiver echoes as LSR."""
        return ((self.ntp_seconds & 0xFFFF) << 16) | (self.ntp_fraction >> 16)


@dataclass(frozen=True, slots=True)
class Report:
    """One SR or RR of a compound packet."""

    ssrc: int
    sender: SenderInfo | None  # None for an RR
    blocks: tuple[ReportBlock, ...]


def ntp_timestamp(unix_time: float) -> tuple[int, int]:
    seconds = int(unix_time)
    return (seconds + NTP_EPOCH_OFFSET_S) & 0xFFFFFFFF, int((unix_time - seconds) * (1 << 32)) & 0xFFFFFFFF


def _packet(count: int, packet_type: int, body: bytes) -> bytes:
    padded = body + b"\0" * (-len(body) % 4)
    return _HEADER.pack(0x80 | count, packet_type, len(padded) // 4) + padded


def build_report(ssrc: int, cname: str, sender: SenderInfo | None, blocks: tuple[ReportBlock, ...] = (),
                 bye: bool = False) -> bytes:
    """A compound packet: SR (with `sender`) or RR, SDES CNAME, and BYE if asked."""
    body = struct.pack("!I", ssrc)
    if sender is not None:
        body += _SENDER_INFO.pack(sender.ntp_seconds, sender.ntp_fraction, sender.rtp_timestamp,
                                  sender.packets & 0xFFFFFFFF, sender.octets & 0xFFFFFFFF)
    for block in blocks:
        lost = max(-(1 << 23), min(block.cumulative_lost, (1 << 23) - 1)) & 0xFFFFFF
        body += _REPORT_BLOCK.pack(block.ssrc, (block.fraction_lost << 24) | lost, block.highest_sequence,
                                   block.jitter, block.last_sr, block.delay_since_last_sr)
    compound = _packet(len(blocks), SR if sender is not None else RR, body)
    name = cname.encode()[:255]
    # a chunk ends with at least one null octet, padded to a 32-bit boundary (RFC 3550 6.5)
    chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name + b"\0"
    compound += _packet(1, SDES, chunk)
    if bye:
        compound += _packet(1, BYE, struct.pack("!I", ssrc))
    return compound


def parse_reports(data: bytes) -> list[Report]:
    """The SRs and RRs of a compound packet (SDES, BYE and others are skipped). Raises RtcpError."""
    reports = []
    offset = 0
    if len(data) < _HEADER.size:
        raise RtcpError("shorter than an RTCP header")
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            raise RtcpError("truncated RTCP header")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        end = offset + 4 * (words + 1)
        if first >> 6 != 2 or end > len(data):
            raise RtcpError("not RTCP version 2, or a length past the datagram")
        count = first & 0x1F
        if packet_type in (SR, RR):
            position = offset + 4
            (ssrc,) = struct.unpack_from("!I", data, position)
            position += 4
            sender = None
            if packet_type == SR:
                sender = SenderInfo(*_SENDER_INFO.unpack_from(data, position))
                position += _SENDER_INFO.size
            if position + count * _REPORT_BLOCK.size > end:
                raise RtcpError("report blocks past the packet's length")
            blocks = []
            for index in range(count):
                source, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(
                    data, position + index * _REPORT_BLOCK.size)
                cumulative = lost_word & 0xFFFFFF
                if cumulative & 0x800000:
                    cumulative -= 1 << 24
                blocks.append(ReportBlock(source, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr))
            reports.append(Report(ssrc, sender, tuple(blocks)))
        offset = end
    return reports
