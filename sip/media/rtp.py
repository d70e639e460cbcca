"""RTP packets (RFC 3550): parse and build. The relay hot path uses `RTP_HEADER` directly on raw bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
HEADER_SIZE = RTP_HEADER.size


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data) with data a multiple of 4 bytes

    def serialize(self) -> bytes:
        return build_rtp(self.payload_type, self.sequence, self.timestamp, self.ssrc, self.payload, self.marker,
                         self.csrcs, self.extension)


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
) -> bytes:
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload type {payload_type} is outside 0..127")
    if len(csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    first = (RTP_VERSION << 6) | (0x10 if extension is not None else 0) | len(csrcs)
    header = RTP_HEADER.pack(first, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                             timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    parts = [header, *(struct.pack("!I", c) for c in csrcs)]
    if extension is not None:
        profile, data = extension
        if len(data) % 4:
            raise ValueError("header extension data must be a multiple of 4 bytes")
        parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
    parts.append(payload)
    return b"".join(parts)


def payload_bounds(data: bytes) -> tuple[int, int]:
    """(start, end) of the payload in a raw packet: skips CSRCs and extension, strips padding."""
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpError(f"packet of {size} bytes is shorter than the 12-byte RTP header")
    first = data[0]
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    start = HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if size < start + 4:
            raise RtpError("truncated header extension")
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpError("padding bit set but padding length is 0")
        end -= padding
    if start > end:
        raise RtpError("header, extension and padding are longer than the packet")
    return start, end


def parse_rtp(data: bytes) -> RtpPacket:
    start, end = payload_bounds(data)
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    csrcs = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER_SIZE)
    extension = None
    if first & 0x10:
        offset = HEADER_SIZE + 4 * len(csrcs)
        profile, words = struct.unpack_from("!HH", data, offset)
        extension = (profile, bytes(data[offset + 4: offset + 4 + 4 * words]))
    return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bytes(data[start:end]), bool(second & 0x80),
                     csrcs, extension)


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 4: RTCP packet types 192..223 occupy the second byte's range that RTP payload types 64..95 would."""
    return len(data) >= 2 and 192 <= data[1] <= 223
