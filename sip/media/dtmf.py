"""RFC 4733 telephone-events (DTMF): sans-I/O receiver (dedupes retransmitted end packets) and sender payloads."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

EVENT_CODES = "0123456789*#ABCD"
FLASH_EVENT = 16
_EVENT = struct.Struct("!BBH")  # event, E/R/volume, duration
END_RETRANSMISSIONS = 3  # RFC 4733 2.5.1.4: the end packet is sent three times


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str  # "0"-"9", "*", "#", "A"-"D", or "flash"
    duration_ms: int
    complete: bool = True  # False when the end packet never arrived and the next event superseded it


def digit_of(event: int) -> str | None:
    if event < len(EVENT_CODES):
        return EVENT_CODES[event]
    return "flash" if event == FLASH_EVENT else None


def event_of(digit: str) -> int:
    if digit == "flash":
        return FLASH_EVENT
    index = EVENT_CODES.find(digit.upper())
    if len(digit) != 1 or index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of {EVENT_CODES} or 'flash')")
    return index


class DtmfReceiver:
    """Feed it telephone-event payloads; reports each event once, on its first end packet.

    An event is identified by its RTP timestamp (RFC 4733 2.5.1.2): retransmitted end packets and packets of an
    event already reported are ignored. If a new event starts before the previous one ended, or `expire` finds no
    packet of it for `end_timeout_s` (all three end packets lost), it is reported with the last duration seen and
    complete=False.
    """

    def __init__(self, on_digit: Callable[[DtmfDigit], None], clock_rate: int = 8000,
                 end_timeout_s: float = 0.5) -> None:
        self._on_digit = on_digit
        self._clock_rate = clock_rate
        self._end_timeout_s = end_timeout_s
        self._last_packet_at = 0.0
        self._current: tuple[int, int, int] | None = None  # (timestamp, event, duration in samples)
        self._reported_timestamp: int | None = None
        self.malformed = 0

    def feed(self, payload: bytes, timestamp: int, now: float = 0.0) -> None:
        self._last_packet_at = now
        if len(payload) < 4:
            self.malformed += 1
            return
        event, flags, duration = _EVENT.unpack_from(payload)
        if digit_of(event) is None:
            self.malformed += 1
            return
        if timestamp == self._reported_timestamp:
            return
        if self._current is not None and self._current[0] != timestamp:
            self._report(*self._current, complete=False)
        self._current = (timestamp, event, duration)
        if flags & 0x80:
            self._report(timestamp, event, duration, complete=True)

    def expire(self, now: float) -> None:
        """Report an event whose end never came (call periodically with the same clock as `feed`)."""
        if self._current is not None and now - self._last_packet_at >= self._end_timeout_s:
            self._report(*self._current, complete=False)

    def _report(self, timestamp: int, event: int, duration: int, complete: bool) -> None:
        self._current = None
        self._reported_timestamp = timestamp
        self._on_digit(DtmfDigit(digit_of(event) or "?", duration * 1000 // self._clock_rate, complete))


def event_payloads(digit: str, duration_ms: int, ptime_ms: int = 20, volume_dbm0: int = 10,
                   clock_rate: int = 8000) -> list[tuple[bytes, bool]]:
    """Payloads for one digit, one per ptime, as (payload, is_first); the end packet is repeated three times.
    All share the event's RTP timestamp; the caller sends them ptime apart."""
    event = event_of(digit)
    samples_per_packet = clock_rate * ptime_ms // 1000
    total = max(1, -(-duration_ms // ptime_ms))
    payloads = [(_EVENT.pack(event, volume_dbm0 & 0x3F, min(0xFFFF, samples_per_packet * k)), k == 1)
                for k in range(1, total)]
    end = _EVENT.pack(event, 0x80 | (volume_dbm0 & 0x3F), min(0xFFFF, samples_per_packet * total))
    payloads.extend((end, total == 1 and i == 0) for i in range(END_RETRANSMISSIONS))
    return payloads
