"""One PJSIP user agent (pjsua2-python) in its own process: a callee or an agent softphone for the tests.

It answers every incoming call, sends a tone on it (ToneGenerator) and records what it receives (AudioMediaRecorder,
WAV). With --registrar it registers with digest credentials first. It reports on stdout, one JSON object a line
({"event": "ready" | "registered" | "incoming" | "media" | "confirmed" | "dtmf" | "stats" | "disconnected", ...}),
and reads commands on stdin, one a line: "hangup" (BYE the current call), "hold", "unhold" (re-INVITEs), "update"
(UPDATE with SDP), "register" (REGISTER again now), "dtmf DIGITS" (RFC 4733), "stats" (RTP receive statistics) or
"quit". It exits after the call ends, on "quit", on stdin closing, or after --duration seconds.

One user agent per process: the pjsua2 wheels are built with PJSUA_MAX_CALLS=4 and with assertions that abort.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time

import pjsua2 as pj

MEDIA_STATUS = {pj.PJSUA_CALL_MEDIA_NONE: "none", pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
                pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold", pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
                pj.PJSUA_CALL_MEDIA_ERROR: "error"}
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}  # the wheels lack IPv6 (PJ_HAS_IPV6=0)
RECORDER_FLUSH_S = 0.3  # let the conference bridge hand the last frames to the recorder before it is closed


def report(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class PeerCall(pj.Call):
    def __init__(self, peer: "Peer", account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.peer = peer
        self.disconnected = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pjsua2 callback name
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            report("confirmed", remote=info.remoteUri)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            report("disconnected", code=info.lastStatusCode, reason=info.lastReason)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(media.status, str(media.status))
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.peer.connect_audio(self.getAudioMedia(index))
                report("media", status=status, codec=self.getStreamInfo(index).codecName)
            else:
                report("media", status=status)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        report("dtmf", digit=prm.digit)


class PeerAccount(pj.Account):
    def __init__(self, peer: "Peer") -> None:
        super().__init__()
        self.peer = peer

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        report("registered", code=prm.code, reason=prm.reason, expiration=prm.expiration)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        call = PeerCall(self.peer, self, prm.callId)
        self.peer.call = call
        report("incoming", source=prm.rdata.srcAddress)
        ringing = pj.CallOpParam()
        ringing.statusCode = 183 if self.peer.args.early_media else pj.PJSIP_SC_RINGING  # pjsua puts SDP in a 183
        call.answer(ringing)
        if self.peer.args.answer_code:
            self.peer.answer_at = time.monotonic() + self.peer.args.answer_delay


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.call: PeerCall | None = None
        self.answer_at: float | None = None
        self.tone: pj.ToneGenerator | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.audio: pj.AudioMedia | None = None
        self.endpoint = pj.Endpoint()

    def start(self) -> None:
        args = self.args
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # callbacks run in this thread, from libHandleEvents
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.userAgent = f"pjsua-peer-{args.role}"
        config.logConfig.level = 4
        config.logConfig.consoleLevel = 0
        if args.log:
            config.logConfig.filename = args.log
        config.medConfig.clockRate = 8000
        config.medConfig.sndClockRate = 8000
        config.medConfig.channelCount = 1
        config.medConfig.noVad = True
        config.medConfig.ecTailLen = 0
        self.endpoint.libInit(config)
        self.endpoint.audDevManager().setNullDev()
        transport = pj.TransportConfig()
        transport.port = args.port
        transport.boundAddress = "127.0.0.1"
        self.endpoint.transportCreate(TRANSPORTS[args.transport], transport)
        self.endpoint.libStart()

        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{args.user}@127.0.0.1:{args.port}"
        if args.registrar:
            account_config.idUri = f"sip:{args.user}@{args.registrar}"
            account_config.regConfig.registrarUri = f"sip:{args.registrar}"
            account_config.regConfig.timeoutSec = 120
            account_config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", args.user, 0, args.password or ""))
        media = account_config.mediaConfig.transportConfig
        media.port = args.rtp_port
        media.portRange = 40
        media.boundAddress = "127.0.0.1"
        self.account = PeerAccount(self)
        self.account.create(account_config)
        report("ready", port=args.port, pid=os.getpid())

    def connect_audio(self, audio: pj.AudioMedia) -> None:
        if self.audio is not None:
            return  # a re-INVITE: the ports stay connected
        self.audio = audio
        if self.args.tone_hz:
            tone = pj.ToneDesc()
            tone.freq1 = tone.freq2 = self.args.tone_hz
            tone.on_msec = 30000
            tone.off_msec = 0
            tone.volume = 0  # pjmedia's default amplitude
            tones = pj.ToneDescVector()
            tones.append(tone)
            self.tone = pj.ToneGenerator()
            self.tone.createToneGenerator(8000, 1)
            self.tone.play(tones, True)
            self.tone.startTransmit(audio)
        if self.args.record:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.args.record)
            audio.startTransmit(self.recorder)

    def run(self) -> None:
        deadline = time.monotonic() + self.args.duration
        stdin_open = True
        ended_at: float | None = None
        while time.monotonic() < deadline:
            self.endpoint.libHandleEvents(20)
            if self.answer_at is not None and time.monotonic() >= self.answer_at and self.call is not None:
                self.answer_at = None
                answer = pj.CallOpParam()
                answer.statusCode = self.args.answer_code
                self.call.answer(answer)
            if self.call is not None and self.call.disconnected:
                ended_at = ended_at or time.monotonic()
                if time.monotonic() - ended_at > RECORDER_FLUSH_S:
                    break
            if stdin_open and select.select([sys.stdin], [], [], 0)[0]:
                command = sys.stdin.readline().strip()
                if command == "":
                    stdin_open = False  # parent went away: finish the call, then exit
                    self.hangup()
                elif command == "hangup":
                    self.hangup()
                elif self.call is not None and command == "hold":
                    self.call.setHold(pj.CallOpParam(True))
                elif self.call is not None and command == "unhold":
                    unhold = pj.CallOpParam(True)
                    unhold.opt.flag = pj.PJSUA_CALL_UNHOLD
                    self.call.reinvite(unhold)
                elif command == "register":
                    self.account.setRegistration(True)  # REGISTER now, with the credentials cached from last time
                elif self.call is not None and command == "update":
                    self.call.update(pj.CallOpParam(True))  # RFC 3311 UPDATE with an SDP offer
                elif self.call is not None and command.startswith("dtmf "):
                    self.call.dialDtmf(command.split()[1])
                elif self.call is not None and command == "stats":
                    self.report_stats()
                elif command == "quit":
                    break
        self.stop()

    def report_stats(self) -> None:
        """PJSIP's own view of the RTP it received (RTCP receiver statistics and its jitter buffer)."""
        info = self.call.getInfo()
        index = next(i for i, m in enumerate(info.media) if m.type == pj.PJMEDIA_TYPE_AUDIO)
        stat = self.call.getStreamStat(index)
        rx = stat.rtcp.rxStat
        report("stats", packets=rx.pkt, lost=rx.loss, duplicated=rx.dup, reordered=rx.reorder,
               discarded=rx.discard, jitter_max_us=rx.jitterUsec.max, jbuf_lost=stat.jbuf.lost,
               jbuf_discarded=stat.jbuf.discard,
               # what PJSIP took from the RTCP it received: the peer's CNAME (SDES), how many reports on the
               # stream it sends (report blocks), and round-trip samples (from the LSR/DLSR they echoed)
               peer_cname=stat.rtcp.peerSdes.cname, reports_on_our_stream=stat.rtcp.txStat.updateCount,
               round_trip_samples=stat.rtcp.rttUsec.n)

    def hangup(self) -> None:
        if self.call is not None and not self.call.disconnected:
            self.call.hangup(pj.CallOpParam())

    def stop(self) -> None:
        if self.recorder is not None and self.audio is not None and not (self.call and self.call.disconnected):
            self.audio.stopTransmit(self.recorder)  # an ended call's port is already gone from the bridge
        # pjsua2 objects must go before libDestroy, the recorder first so its WAV header is finalised
        self.recorder = None
        self.tone = None
        self.audio = None
        self.call = None
        self.endpoint.hangupAllCalls()
        self.account.shutdown()
        self.account = None
        self.endpoint.libDestroy()
        report("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=("callee", "agent"), required=True)
    parser.add_argument("--port", type=int, required=True, help="SIP UDP port on 127.0.0.1")
    parser.add_argument("--rtp-port", type=int, required=True, help="first RTP port tried")
    parser.add_argument("--user", default="peer", help="user part of the account URI (the agent's username)")
    parser.add_argument("--registrar", help="host:port to REGISTER to with digest credentials")
    parser.add_argument("--password", help="digest password")
    parser.add_argument("--tone-hz", type=int, default=0, help="send a sine tone of this frequency, Hz")
    parser.add_argument("--record", help="WAV file to record the received audio to")
    parser.add_argument("--answer-delay", type=float, default=0.2, help="ring this long before answering, seconds")
    parser.add_argument("--answer-code", type=int, default=200, help="final response to INVITE; 0: never answer")
    parser.add_argument("--early-media", action="store_true", help="send 183 with SDP (and the tone) before it")
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="udp")
    parser.add_argument("--duration", type=float, default=20.0, help="exit after this long, seconds")
    parser.add_argument("--log", help="pjsip log file")
    peer = Peer(parser.parse_args())
    peer.start()
    peer.run()


if __name__ == "__main__":
    main()
