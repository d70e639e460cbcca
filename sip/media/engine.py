"""The media engine: one UDP socket pair per leg, RTP relay between bridged legs, playback, DTMF, recording.

Each `MediaLeg` is its own asyncio DatagramProtocol (works on uvloop). The relay runs inside `datagram_received`:
it rewrites the header in a copy of the packet (per-outgoing-leg SSRC, continuous sequence numbers and timestamps
across re-bridging and playback), translates the payload through a 256-byte table when the legs negotiated
different G.711 laws, and sends it. Nothing else is allocated per packet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import struct
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sip.media import g711
from sip.media.announcement import Announcement
from sip.media.dtmf import DtmfDigit, DtmfReceiver, event_payloads
from sip.media.ports import PortPool, PortsExhausted
from sip.media.recording import CallRecording, RecordingWriter
from sip.media.rtcp import ReportBlock, RtcpError, SenderInfo, build_report, ntp_timestamp, parse_reports
from sip.media.rtp import HEADER_SIZE, RTP_HEADER, RtpError, payload_bounds
from sip.media.sdp import SUPPORTED_CODECS, Direction, Negotiated, SdpNegotiator, SessionDescription
from sip.settings import RtpSettings

log = logging.getLogger(__name__)
_SEQ_TS_SSRC = struct.Struct("!HII")
_BIND_ATTEMPTS = 20
_MAX_DROPOUT = 3000  # RFC 3550 A.1: a larger forward jump, or a backward one beyond _MAX_MISORDER,
_MAX_MISORDER = 100  # means the sender restarted its numbering
_SAMPLES_PER_S = g711.SAMPLE_RATE  # the RTP clock of every codec we carry


def _same_host(source: tuple | None, host: str) -> bool:
    if source is None:
        return False
    try:
        return ipaddress.ip_address(source[0]) == ipaddress.ip_address(host)
    except ValueError:
        return False


class MediaError(RuntimeError):
    """Misuse of the media engine (leg not negotiated, already bridged, released...)."""


@dataclass(slots=True)
class LegStats:
    """Counters of one leg. `relay_delay_counts[i]` counts relayed packets whose processing (receive to sendto
    returned) took at most `relay_delay_bounds_s[i]`; the last slot counts the slower ones."""

    relay_delay_bounds_s: tuple[float, ...]
    packets_in: int = 0
    packets_out: int = 0
    packets_relayed: int = 0
    packets_ignored: int = 0  # wrong source, unknown payload type, malformed, RTCP on the RTP port
    octets_out: int = 0  # RTP payload octets sent (RTCP sender info)
    rtcp_sent: int = 0
    rtcp_received: int = 0
    jitter: float = 0.0  # RFC 3550 A.8 interarrival jitter of the audio received, timestamp units
    relay_delay_counts: list[int] = field(default_factory=list)
    first_relayed_at: float = 0.0  # perf_counter() arrival of the first packet relayed to the peer (0: none yet)
    # RFC 3550 A.3 loss accounting for the current source, plus what earlier sources lost
    _base_seq: int = 0
    _max_seq: int = 0
    _cycles: int = 0
    _received: int = 0
    _lost_before: int = 0
    _expected_prior: int = 0  # at the previous RTCP report: for its fraction lost
    _received_prior: int = 0

    def __post_init__(self) -> None:
        self.relay_delay_counts = [0] * (len(self.relay_delay_bounds_s) + 1)

    @property
    def lost(self) -> int:
        expected = self._cycles + self._max_seq - self._base_seq + 1 if self._received else 0
        return self._lost_before + max(0, expected - self._received)

    def snapshot(self) -> dict:
        return {
            "packets_in": self.packets_in, "packets_out": self.packets_out, "packets_relayed": self.packets_relayed,
            "packets_ignored": self.packets_ignored, "packets_lost": self.lost, "jitter": self.jitter,
            "rtcp_sent": self.rtcp_sent, "rtcp_received": self.rtcp_received,
            "first_relayed_at": self.first_relayed_at,
            "relay_delay_bounds_s": list(self.relay_delay_bounds_s),
            "relay_delay_counts": list(self.relay_delay_counts),
        }


@dataclass(frozen=True, slots=True)
class MediaQuality:
    """A leg's receive quality, and what its remote reported (RTCP) of the stream we sent it."""

    packets_received: int
    packets_lost: int
    jitter_s: float
    remote_reported_lost: int | None  # None: the remote sent no report on our stream
    remote_jitter_s: float | None


class _RtcpEndpoint(asyncio.DatagramProtocol):
    """The RTCP port of a leg (RTP port + 1): reads the remote's reports, sends the leg's own."""

    def __init__(self, leg: "MediaLeg") -> None:
        self.leg = leg

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.leg._rtcp_received(data, addr)


class MediaLeg(asyncio.DatagramProtocol):
    """One RTP endpoint of a call. Created by `MediaEngine.allocate_leg`; negotiate with make_offer/answer/
    apply_answer; set `on_dtmf` and `on_inactivity` callbacks."""

    def __init__(self, engine: "MediaEngine", label: str, port: int) -> None:
        settings = engine.settings
        self.label = label
        self.engine = engine
        self.port = port
        self.local_address: tuple[str, int] = (settings.bind_host, port)
        self.sdp = SdpNegotiator(settings.advertised_host or settings.bind_host, port, settings.codecs,
                                 settings.telephone_event_pt, settings.ptime_ms)
        self.negotiated: Negotiated | None = None
        self.stats = LegStats(settings.relay_delay_buckets_s)
        self.on_dtmf: Callable[[DtmfDigit], None] | None = None
        self.on_inactivity: Callable[[MediaLeg], None] | None = None
        self.bridge: Bridge | None = None
        self.ssrc = random.getrandbits(32)
        self.released = False
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._symmetric = settings.symmetric_rtp
        self._in_ssrc = -1
        self._source: tuple | None = None  # address packets are accepted from (latched)
        self._send_address: tuple | None = None
        self._sending = False  # negotiated direction lets us send
        self._audio_pt = -1
        self._dtmf_pt = -1
        self._codec = "PCMU"
        # RFC 3264 5.1: until the first answer, accept what we offered (payload type -> encoding name)
        self._early_codecs: dict[int, str] = {}
        self._held: bytes | None = None  # last audio packet received while unbridged, relayed on bridge()
        self._held_at = 0.0
        self._dtmf_receiver = DtmfReceiver(self._dtmf_received)
        # outgoing stream state, shared by relay, playback and DTMF so the remote sees one continuous stream
        self._next_seq = random.getrandbits(16)
        self._last_ts = random.getrandbits(32)
        self._last_sent = 0.0
        self._local_media = 0  # > 0 while we play or send DTMF: relayed audio towards this leg is dropped
        # relay route from this leg to its bridge peer
        self._peer: MediaLeg | None = None
        self._route_ssrc = -1
        self._seq_offset = 0
        self._ts_offset = 0
        self._route_marker = 0
        self._translate: bytes | None = None
        self._transit: float | None = None  # arrival minus RTP timestamp of the last audio packet, for jitter
        # RTCP: where reports go (latched like RTP), the remote's last SR, what it last said of our stream
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._rtcp_source: tuple | None = None
        self._last_sr = 0
        self._last_sr_at = 0.0
        self.remote_report: ReportBlock | None = None
        self._peer_audio_pt = 0
        self._peer_dtmf_pt = -1
        self._recording: CallRecording | None = None
        self._recording_channel = 0
        # inactivity watch
        self._seen_packets = 0
        self._seen_at = 0.0
        self._inactivity_fired = False

    # ------------------------------------------------------------ SDP

    def make_offer(self, direction: Direction = "sendrecv") -> str:
        """Our SDP offer (or re-offer: 'sendonly' to hold the remote, 'sendrecv' to resume)."""
        offer = self.sdp.make_offer(direction)
        if self.negotiated is None:
            audio = offer.media[0]
            self._early_codecs = {pt: rtpmap.encoding.upper() for pt in audio.payload_types()
                                  if (rtpmap := audio.encoding_of(pt)) is not None}
        return offer.serialize()

    def answer(self, remote_offer: str | bytes | SessionDescription, direction: Direction | None = None) -> str:
        """Answer the remote's (re-)offer and apply it. Raises SdpError / SdpNegotiationError (-> 488)."""
        answer, negotiated = self.sdp.receive_offer(remote_offer, direction)
        self._apply(negotiated)
        return answer.serialize()

    def apply_answer(self, remote_answer: str | bytes | SessionDescription) -> Negotiated:
        """Apply the remote's answer to our last offer."""
        negotiated = self.sdp.receive_answer(remote_answer)
        self._apply(negotiated)
        return negotiated

    def _apply(self, negotiated: Negotiated) -> None:
        previous = self.negotiated
        self.negotiated = negotiated
        if previous is None or previous.remote_address != negotiated.remote_address:
            if previous is not None or not _same_host(self._source, negotiated.remote_host):
                # re-latch: the remote moved, or media before the answer came from another host than it names
                # (a stranger's early packets must not keep the leg; a port differing is usual, so it may)
                self._source = None
                self._held = None
            self._send_address = self._source or negotiated.remote_address
        self._early_codecs = {}
        self._sending = negotiated.we_send
        self._audio_pt = negotiated.payload_type
        self._dtmf_pt = negotiated.dtmf_payload_type if negotiated.dtmf_payload_type is not None else -1
        self._codec = negotiated.codec
        self._seen_packets = self.stats.packets_in
        self._seen_at = time.monotonic()
        self._inactivity_fired = False
        self._refresh_routes()

    @property
    def remote_address(self) -> tuple | None:
        """Where our RTP goes: the latched source (symmetric RTP) or, until a packet arrives, the SDP address."""
        return self._send_address

    def _refresh_routes(self) -> None:
        for leg in (self, self._peer):
            if leg is not None and leg._peer is not None:
                leg._configure_route()

    def _configure_route(self) -> None:
        peer = self._peer
        assert peer is not None
        self._translate = g711.transcode_table(self._codec, peer._codec)
        self._peer_audio_pt = peer._audio_pt
        self._peer_dtmf_pt = peer._dtmf_pt
        self._route_ssrc = -1  # resynchronise offsets on the next packet

    # ------------------------------------------------------------ receive / relay (hot path)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error on %s: %s", self.label, exc)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        now = time.perf_counter()
        stats = self.stats
        if addr != self._source and not self._accept_source(addr):
            stats.packets_ignored += 1
            return
        if len(data) >= HEADER_SIZE and data[0] == 0x80:
            start = HEADER_SIZE
            end = len(data)
        else:  # CSRCs, extension or padding (rare): find the payload, refuse what is not RTP
            try:
                start, end = payload_bounds(data)
            except RtpError:
                stats.packets_ignored += 1
                return
        second = data[1]
        pt = second & 0x7F
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        stats.packets_in += 1
        if ssrc != self._in_ssrc:
            self._new_source(ssrc, seq)
        else:
            delta = (seq - stats._max_seq) & 0xFFFF
            if 0 < delta <= _MAX_DROPOUT:
                if seq < stats._max_seq:
                    stats._cycles += 0x10000
                stats._max_seq = seq
            elif _MAX_DROPOUT < delta < 0x10000 - _MAX_MISORDER:
                self._new_source(ssrc, seq)  # renumbered without a new SSRC (RFC 3550 A.1): a new stream
                self._route_ssrc = -1
        stats._received += 1
        if pt == self._audio_pt:
            transit = now * _SAMPLES_PER_S - ts
            previous, self._transit = self._transit, transit
            if previous is not None:
                swing = abs(transit - previous)
                if swing < 0x80000000:  # else the timestamp wrapped between the two packets
                    stats.jitter += (swing - stats.jitter) * 0.0625  # RFC 3550 A.8
            out_pt = self._peer_audio_pt
            translate = self._translate
            recording = self._recording
            if recording is not None:
                recording.feed(self._recording_channel, data if end == len(data) else data[:end], start, self._codec,
                               ts, ssrc, now)
        elif pt == self._dtmf_pt:
            self._dtmf_receiver.feed(data[start:end], ts, time.monotonic())
            out_pt = self._peer_dtmf_pt
            if out_pt < 0:
                return
            translate = None
        elif pt in self._early_codecs:
            self._early_packet(data, start, end, pt, now)
            return
        else:
            stats.packets_ignored += 1
            return
        peer = self._peer
        if peer is None:
            if pt == self._audio_pt:
                self._held = data
                self._held_at = now
            return
        self._relay(peer, data, start, end, pt, out_pt, translate, now)

    def _relay(self, peer: "MediaLeg", data: bytes, start: int, end: int, pt: int, out_pt: int,
               translate: bytes | None, now: float) -> None:
        if not peer._sending or peer._local_media or peer._send_address is None:
            return
        stats = self.stats
        second = data[1]
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc != self._route_ssrc:
            self._resync(peer, seq, ts, ssrc, now)
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if data[0] == 0x80 and translate is None:
            packet = bytearray(data)
        else:
            payload = data[start:end]
            if translate is not None:
                payload = payload.translate(translate)
            packet = bytearray(HEADER_SIZE)
            packet += payload
        RTP_HEADER.pack_into(packet, 0, 0x80, (second & 0x80) | self._route_marker | out_pt, out_seq, out_ts,
                             peer.ssrc)
        self._route_marker = 0
        peer._transport.sendto(packet, peer._send_address)  # type: ignore[union-attr]
        if (out_seq - peer._next_seq) & 0xFFFF < 0x8000:
            peer._next_seq = (out_seq + 1) & 0xFFFF
            peer._last_ts = out_ts
            peer._last_sent = now
        peer.stats.packets_out += 1
        peer.stats.octets_out += len(packet) - HEADER_SIZE
        if not stats.packets_relayed:
            stats.first_relayed_at = now  # answer-to-bridge delay (benchmarks/sip_answer_to_bridge.py)
        stats.packets_relayed += 1
        stats.relay_delay_counts[bisect_left(stats.relay_delay_bounds_s, time.perf_counter() - now)] += 1

    def _early_packet(self, data: bytes, start: int, end: int, pt: int, now: float) -> None:
        """A packet of a payload type we offered, before the answer told us which one the remote chose."""
        encoding = self._early_codecs[pt]
        peer = self._peer
        if encoding not in SUPPORTED_CODECS:  # telephone-event
            self._dtmf_receiver.feed(data[start:end], _SEQ_TS_SSRC.unpack_from(data, 2)[1], time.monotonic())
            if peer is not None and peer._dtmf_pt >= 0:
                self._relay(peer, data, start, end, pt, peer._dtmf_pt, None, now)
            return
        if peer is None:
            self._held = data
            self._held_at = now
            return
        self._relay_audio(peer, data, start, end, encoding, now)

    def _relay_audio(self, peer: "MediaLeg", data: bytes, start: int, end: int, encoding: str, now: float) -> None:
        """Record and relay an audio packet outside the hot path (early media, the packet held until bridge())."""
        recording = self._recording
        if recording is not None:
            _, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
            recording.feed(self._recording_channel, data[:end], start, encoding, ts, ssrc, now)
        self._relay(peer, data, start, end, data[1] & 0x7F, peer._audio_pt, g711.transcode_table(encoding, peer._codec),
                    now)

    def _relay_held(self) -> None:
        """On bridge(): relay the audio packet that arrived just before, if it is younger than one packet time, so
        the peer hears the remote from its first packet instead of its next one."""
        data, self._held = self._held, None
        peer = self._peer
        if data is None or peer is None:
            return
        now = time.perf_counter()
        ptime_ms = self.negotiated.ptime_ms if self.negotiated is not None else self.engine.settings.ptime_ms
        if now - self._held_at > ptime_ms / 1000:
            return
        pt = data[1] & 0x7F
        encoding = self._codec if pt == self._audio_pt else self._early_codecs.get(pt)
        if encoding is None:  # the answer chose another payload type than the held packet's
            return
        start, end = payload_bounds(data)
        self._relay_audio(peer, data, start, end, encoding, now)

    def _new_source(self, ssrc: int, seq: int) -> None:
        stats = self.stats
        stats._lost_before = stats.lost
        stats._base_seq = stats._max_seq = seq
        stats._cycles = 0
        stats._received = 0
        stats._expected_prior = stats._received_prior = 0
        self._in_ssrc = ssrc
        self._transit = None

    def _accept_source(self, addr: tuple) -> bool:
        if not self._symmetric:
            return True
        if self._source is None:
            self._source = addr  # symmetric RTP: latch onto the first source, send our media back to it
            if self.negotiated is not None:  # before the answer, never send to an address nobody vouched for
                self._send_address = addr
            return True
        return False

    def _resync(self, peer: "MediaLeg", seq: int, ts: int, ssrc: int, now: float) -> None:
        """Offsets that make this source continue the peer's outgoing stream where it left off."""
        self._route_ssrc = ssrc
        self._seq_offset = (peer._next_seq - seq) & 0xFFFF
        samples = g711.SAMPLE_RATE * (self.negotiated.ptime_ms if self.negotiated else 20) // 1000
        elapsed = round((now - peer._last_sent) * g711.SAMPLE_RATE) if peer._last_sent else samples
        self._ts_offset = (peer._last_ts + max(samples, elapsed) - ts) & 0xFFFFFFFF
        self._route_marker = 0x80  # RFC 3551 4.1: marker on the first packet after a discontinuity

    def quality(self) -> MediaQuality:
        report = self.remote_report
        return MediaQuality(self.stats.packets_in, self.stats.lost, self.stats.jitter / _SAMPLES_PER_S,
                            None if report is None else max(0, report.cumulative_lost),
                            None if report is None else report.jitter / _SAMPLES_PER_S)

    # ------------------------------------------------------------ RTCP

    def _rtcp_received(self, data: bytes, addr: tuple) -> None:
        remote = self._source or self._send_address
        if remote is None or not _same_host(addr, remote[0]):
            return  # only the remote we exchange RTP with may report on it
        self.stats.rtcp_received += 1
        try:
            reports = parse_reports(data)
        except RtcpError:
            return
        if self._symmetric and self._rtcp_source is None:
            self._rtcp_source = addr
        for report in reports:
            if report.sender is not None:
                self._last_sr = report.sender.compact_ntp
                self._last_sr_at = time.perf_counter()
            for block in report.blocks:
                if block.ssrc == self.ssrc:
                    self.remote_report = block

    def _schedule_rtcp(self) -> None:
        interval_s = self.engine.settings.rtcp_interval_s
        if interval_s > 0 and not self.released:
            # randomised as RFC 3550 6.3.1 asks: hundreds of legs must not report in step
            self._rtcp_timer = asyncio.get_running_loop().call_later(
                interval_s * random.uniform(0.5, 1.5), self._send_rtcp)

    def _send_rtcp(self, bye: bool = False) -> None:
        if not bye:
            self._schedule_rtcp()
        remote = self._rtcp_source
        if remote is None and self._send_address is not None:
            remote = (self._send_address[0], self._send_address[1] + 1)
        if self.negotiated is None or remote is None or self._rtcp_transport is None:
            return
        self._rtcp_transport.sendto(self._rtcp_report(bye), remote)
        self.stats.rtcp_sent += 1

    def _rtcp_report(self, bye: bool) -> bytes:
        stats = self.stats
        now = time.perf_counter()
        sender = None
        if stats.packets_out:
            elapsed = round((now - self._last_sent) * _SAMPLES_PER_S) if self._last_sent else 0
            sender = SenderInfo(*ntp_timestamp(time.time()), (self._last_ts + elapsed) & 0xFFFFFFFF,
                                stats.packets_out, stats.octets_out)
        blocks: tuple[ReportBlock, ...] = ()
        if stats._received:
            expected = stats._cycles + stats._max_seq - stats._base_seq + 1
            expected_interval = expected - stats._expected_prior
            lost_interval = expected_interval - (stats._received - stats._received_prior)
            stats._expected_prior, stats._received_prior = expected, stats._received
            fraction = 0  # RFC 3550 A.3: none when nothing was expected, or duplicates outnumber the losses
            if expected_interval > 0 and lost_interval > 0:
                fraction = min(255, (lost_interval << 8) // expected_interval)
            since_sr = int((now - self._last_sr_at) * 65536) if self._last_sr else 0
            blocks = (ReportBlock(self._in_ssrc, fraction, expected - stats._received,
                                  (stats._cycles + stats._max_seq) & 0xFFFFFFFF, int(stats.jitter), self._last_sr,
                                  since_sr),)
        return build_report(self.ssrc, self.engine.cname, sender, blocks, bye)

    def _dtmf_received(self, digit: DtmfDigit) -> None:
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    # ------------------------------------------------------------ local media (playback, DTMF)

    def _next_local_timestamp(self, samples_per_packet: int) -> int:
        now = time.perf_counter()
        elapsed = round((now - self._last_sent) * g711.SAMPLE_RATE) if self._last_sent else samples_per_packet
        return (self._last_ts + max(samples_per_packet, elapsed)) & 0xFFFFFFFF

    def _send_local(self, pt: int, ts: int, payload: bytes, marker: bool) -> None:
        if self.released or not self._sending or self._send_address is None or self._transport is None:
            return
        header = RTP_HEADER.pack(0x80, (0x80 if marker else 0) | pt, self._next_seq, ts, self.ssrc)
        self._transport.sendto(header + payload, self._send_address)
        self._next_seq = (self._next_seq + 1) & 0xFFFF
        self._last_ts = ts
        self._last_sent = time.perf_counter()
        self.stats.packets_out += 1
        self.stats.octets_out += len(payload)

    async def _paced(self, packets: list[tuple[int, int, bytes, bool]], ptime_s: float) -> None:
        """Send (pt, ts, payload, marker) one per ptime at absolute loop times, so pacing never drifts."""
        loop = asyncio.get_running_loop()
        self._local_media += 1
        try:
            start = loop.time()
            for index, (pt, ts, payload, marker) in enumerate(packets):
                delay = start + index * ptime_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.released:
                    return
                self._send_local(pt, ts, payload, marker)
        finally:
            self._local_media -= 1
            self._refresh_routes()  # relay resumes with offsets continuing after what we sent

    async def play(self, announcement: Announcement) -> None:
        """Play to the remote at the announcement's ptime; returns when the last packet is sent (or the leg is
        released). Relayed audio towards this leg is paused meanwhile."""
        negotiated = self._require_negotiated()
        clip = announcement.for_codec(negotiated.codec)
        samples = g711.SAMPLE_RATE * clip.ptime_ms // 1000
        first = self._next_local_timestamp(samples)
        packets = [(self._audio_pt, (first + i * samples) & 0xFFFFFFFF, frame, i == 0)
                   for i, frame in enumerate(clip.frames)]
        await self._paced(packets, clip.ptime_ms / 1000)

    async def send_dtmf(self, digits: str, duration_ms: int | None = None, gap_ms: int = 60) -> None:
        """Send RFC 4733 events for each digit; returns when sent. Needs telephone-event in the negotiation."""
        negotiated = self._require_negotiated()
        if negotiated.dtmf_payload_type is None:
            raise MediaError(f"leg {self.label}: the remote did not negotiate telephone-event")
        duration_ms = duration_ms or self.engine.settings.dtmf_duration_ms
        ptime_ms = self.engine.settings.ptime_ms
        samples = g711.SAMPLE_RATE * ptime_ms // 1000
        for digit in digits:
            ts = self._next_local_timestamp(samples)
            packets = [(negotiated.dtmf_payload_type, ts, payload, first)
                       for payload, first in event_payloads(digit, duration_ms, ptime_ms)]
            await self._paced(packets, ptime_ms / 1000)
            await asyncio.sleep(gap_ms / 1000)

    def _require_negotiated(self) -> Negotiated:
        if self.released:
            raise MediaError(f"leg {self.label} is released")
        if self.negotiated is None:
            raise MediaError(f"leg {self.label} has no negotiated media yet (offer/answer not complete)")
        return self.negotiated

    # ------------------------------------------------------------ inactivity

    def _check_inactivity(self, now: float, timeout_s: float) -> None:
        self._dtmf_receiver.expire(now)
        if self.stats.packets_in != self._seen_packets:
            self._seen_packets = self.stats.packets_in
            self._seen_at = now
            self._inactivity_fired = False
            return
        expects_media = self.negotiated is not None and self.negotiated.we_receive
        if expects_media and not self._inactivity_fired and now - self._seen_at >= timeout_s:
            self._inactivity_fired = True
            if self.on_inactivity is not None:
                try:
                    self.on_inactivity(self)
                except Exception:
                    log.exception("inactivity callback of leg %s failed", self.label)

    def __repr__(self) -> str:
        return f"<MediaLeg {self.label} {self.local_address[0]}:{self.port}>"


@dataclass(eq=False)
class Bridge:
    """Two legs relaying to each other. a = callee (recording channel 0), b = agent (channel 1)."""

    a: MediaLeg
    b: MediaLeg
    recording: CallRecording | None = None
    _closed: asyncio.Future | None = None

    async def wait_closed(self) -> None:
        """After unbridge: returns once the recording file is complete."""
        if self._closed is not None:
            await self._closed


class MediaEngine:
    """Owns the RTP port pool, the legs, the inactivity watch and the recording writer thread."""

    def __init__(self, settings: RtpSettings) -> None:
        self.settings = settings
        self.cname = f"dialer-{random.getrandbits(48):012x}@{settings.advertised_host or settings.bind_host}"
        self.ports = PortPool(settings.port_min, settings.port_max)
        self.legs: set[MediaLeg] = set()
        self._recording_writer = RecordingWriter()
        self._watch: asyncio.TimerHandle | None = None

    async def allocate_leg(self, label: str) -> MediaLeg:
        """A leg with its RTP (even port) and RTCP (port + 1) sockets bound. Raises PortsExhausted."""
        loop = asyncio.get_running_loop()
        host = self.settings.bind_host
        for _ in range(_BIND_ATTEMPTS):
            port = self.ports.acquire()
            leg = MediaLeg(self, label, port)
            try:
                await loop.create_datagram_endpoint(lambda: leg, local_addr=(host, port))
            except OSError:
                self.ports.release(port)  # taken by another process, or our closed socket not yet gone
                await asyncio.sleep(0)
                continue
            try:
                leg._rtcp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _RtcpEndpoint(leg), local_addr=(host, port + 1))
            except OSError:
                leg._transport.close()  # type: ignore[union-attr]
                self.ports.release(port)
                await asyncio.sleep(0)
                continue
            self.legs.add(leg)
            self._ensure_watch(loop)
            leg._schedule_rtcp()
            return leg
        raise PortsExhausted(f"no bindable RTP port pair on {host} after {_BIND_ATTEMPTS} attempts")

    def bridge(self, a: MediaLeg, b: MediaLeg, recording_path: Path | None = None) -> Bridge:
        """Relay a <-> b. a is the callee (recording channel 0), b the agent (channel 1)."""
        for leg in (a, b):
            if leg.released:
                raise MediaError(f"leg {leg.label} is released")
            if leg.bridge is not None:
                raise MediaError(f"leg {leg.label} is already bridged; unbridge it first")
        if a is b:
            raise MediaError("cannot bridge a leg to itself")
        recording = None
        if recording_path is not None:
            recording = CallRecording(Path(recording_path), self._recording_writer,
                                      self.settings.recording_flush_interval_s, self.settings.recording_jitter_s)
        bridge = Bridge(a, b, recording)
        for leg, peer, channel in ((a, b, 0), (b, a, 1)):
            leg.bridge = bridge
            leg._peer = peer
            leg._recording = recording
            leg._recording_channel = channel
        a._configure_route()
        b._configure_route()
        a._relay_held()
        b._relay_held()
        return bridge

    def unbridge(self, bridge: Bridge) -> None:
        """Stop relaying; the recording is completed in the background (`await bridge.wait_closed()`)."""
        for leg in (bridge.a, bridge.b):
            if leg.bridge is bridge:
                leg.bridge = None
                leg._peer = None
                leg._recording = None
        if bridge.recording is not None and bridge._closed is None:
            bridge._closed = bridge.recording.close()

    async def play(self, leg: MediaLeg, announcement: Announcement) -> None:
        await leg.play(announcement)

    def release(self, leg: MediaLeg) -> None:
        """Close the leg's sockets and return its ports. Unbridges first. Idempotent."""
        if leg.released:
            return
        if leg.bridge is not None:
            self.unbridge(leg.bridge)
        if leg._rtcp_timer is not None:
            leg._rtcp_timer.cancel()
        if leg.stats.rtcp_sent:
            leg._send_rtcp(bye=True)  # RFC 3550 6.6: a participant leaving says BYE
        leg.released = True
        for transport in (leg._transport, leg._rtcp_transport):
            if transport is not None:
                transport.close()
        self.ports.release(leg.port)
        self.legs.discard(leg)

    def _ensure_watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watch is None:
            self._watch = loop.call_later(self.settings.inactivity_check_interval_s, self._watch_inactivity, loop)

    def _watch_inactivity(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for leg in list(self.legs):
            leg._check_inactivity(now, self.settings.inactivity_timeout_s)
        self._watch = loop.call_later(self.settings.inactivity_check_interval_s, self._watch_inactivity, loop)

    async def close(self) -> None:
        """Release every leg, finish recordings, stop the writer thread."""
        bridges = {leg.bridge for leg in self.legs if leg.bridge is not None}
        for leg in list(self.legs):
            self.release(leg)
        for bridge in bridges:
            await bridge.wait_closed()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self._recording_writer.shutdown()

    def stats(self) -> dict:
        return {leg.label: leg.stats.snapshot() for leg in self.legs}
