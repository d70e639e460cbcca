"""The media plane: SDP offer/answer, RTP relay between bridged legs, announcements, DTMF, recording.

API used by `sip/switch.py` (stable; extend, don't rename)::

    engine = MediaEngine(rtp_settings)                 # sip.settings.RtpSettings
    leg = await engine.allocate_leg(label)             # RTP socket on an even pool port (+1 RTCP); PortsExhausted
    leg.local_address                                  # (host, port) bound
    leg.remote_address                                 # where RTP goes: latched source, else the SDP address
    sdp: str = leg.make_offer(direction="sendrecv")    # "sendonly" = put remote on hold, "sendrecv" = resume
    sdp: str = leg.answer(remote_offer, direction=None)  # answers a (re-)offer; SdpError / SdpNegotiationError -> 488
    negotiated = leg.apply_answer(remote_answer)       # Negotiated(codec, payload_type, dtmf_payload_type, ptime_ms,
                                                       #            direction, remote_host, remote_port)
    leg.on_dtmf = callback(DtmfDigit(digit, duration_ms, complete))   # RFC 4733 received on this leg
    leg.on_inactivity = callback(leg)                  # no RTP for RtpSettings.inactivity_timeout_s (switch hangs up)
    await leg.send_dtmf("123#", duration_ms=None)
    bridge = engine.bridge(callee_leg, agent_leg, recording_path)  # Bridge; recording: stereo WAV, ch0 callee, ch1 agent
    engine.unbridge(bridge); await bridge.wait_closed()  # recording file complete after wait_closed
    await engine.play(leg, Announcement.load(wav_path, codec="PCMU"))  # returns when the last packet is sent
    engine.release(leg)                                # idempotent; unbridges first
    leg.stats.snapshot() / engine.stats()              # packets in/out/relayed/ignored/lost, relay delay histogram
    await engine.close()

Symmetric RTP: each leg sends to the source address of the first RTP packet it receives (callers behind NAT),
and to the SDP address until then. RTCP is terminated per leg (RFC 3550): every `rtcp_interval_s` (randomised) a
leg sends its remote an SR or RR on the stream it receives (loss, jitter, LSR/DLSR) with an SDES CNAME, to the
address the remote's own RTCP comes from or else RTP port + 1, and a BYE when released; `leg.remote_report` holds
what the remote last reported on our stream, and `leg.quality()` sums up both directions (MediaQuality).
Every leg sends with its own SSRC; sequence numbers and timestamps continue across re-bridging, playback and DTMF.
PCMU<->PCMA is transcoded when the bridged legs negotiated different laws.

Operations: the relay costs about 13 us of CPU per packet on this machine kind (two thirds of it the recvfrom and
sendto system calls), i.e. 0.4 core for 300 bridged, recorded calls. Call `gc.freeze()` once the process has
started: benchmarks/media_relay.py measured full garbage collections pausing the loop up to 80 ms without it.
"""

from sip.media.announcement import Announcement, AnnouncementError
from sip.media.dtmf import DtmfDigit
from sip.media.engine import Bridge, LegStats, MediaEngine, MediaError, MediaLeg, MediaQuality
from sip.media.ports import PortsExhausted
from sip.media.sdp import Negotiated, SdpError, SdpNegotiationError

__all__ = [
    "Announcement", "AnnouncementError", "Bridge", "DtmfDigit", "LegStats", "MediaEngine", "MediaError", "MediaLeg",
    "MediaQuality", "Negotiated", "PortsExhausted", "SdpError", "SdpNegotiationError",
]
