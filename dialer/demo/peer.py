"""A simulated SIP peer of the demo, built on our own SIP stack: an endpoint on loopback that answers INVITEs as a
real UAS dialog (our InviteSession) and sends audio from its own media engine."""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

import numpy as np

from sip.dialog import InviteSession, Phase, SessionEnded, new_tag
from sip.endpoint import SessionHandle, SipEndpoint
from sip.media.announcement import Announcement
from sip.media.engine import MediaEngine, MediaError, MediaLeg
from sip.media.ports import PortsExhausted
from sip.message import Request, make_response
from sip.settings import RtpSettings, SipSettings
from sip.transaction import Address, ServerTransaction, Timers
from sip.transport import LocalEnd

log = logging.getLogger("dialer.demo")

ALLOCATE_ROUNDS = 5
AUDIO_SECONDS = 2.0
SAMPLE_RATE = 8000


def write_voice_wav(path: Path, base_hz: float, seed: int) -> Path:
    """A couple of seconds of speech-like audio (a warbling tone in syllables) to stand for a voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(AUDIO_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = base_hz * (1 + 0.08 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)))
    syllables = (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)
    samples = 6000 * np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * syllables
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


class PeerCall:
    """One answered (or still ringing) incoming call of a simulated peer."""

    def __init__(self, peer: "SimulatedPeer", request: Request, handle: SessionHandle) -> None:
        self.peer = peer
        self.request = request
        self.handle = handle
        self.leg: MediaLeg | None = None
        self.ended = asyncio.get_running_loop().create_future()
        self._audio: asyncio.Task | None = None

    @property
    def session(self) -> InviteSession:
        return self.handle.session

    @property
    def user(self) -> str:
        return self.request.uri.user or ""

    @property
    def alive(self) -> bool:
        return self.session.phase in (Phase.EARLY, Phase.CONFIRMED)

    def respond(self, status: int, sdp: bytes = b"") -> None:
        endpoint = self.peer.endpoint
        endpoint.session_actions(self.handle, self.session.uas_response(status, endpoint.now, sdp=sdp))
        if status >= 300:
            self._finish()

    async def answer(self) -> bool:
        """200 OK with our SDP answer and start talking; False when the call was cancelled meanwhile."""
        if self.session.phase is not Phase.EARLY:
            self._finish()
            return False
        try:
            self.leg = await self.peer.allocate_leg(f"{self.peer.name}-{self.user}")
        except PortsExhausted as exc:
            log.warning("%s: %s", self.peer.name, exc)
            self.respond(503)
            return False
        try:
            sdp = self.leg.answer(self.request.body).encode()
        except ValueError as exc:
            log.warning("%s: unusable offer: %s", self.peer.name, exc)
            self.respond(488)
            return False
        self.session.answer_offer = lambda offer: self.leg.answer(offer).encode()
        if self.session.phase is not Phase.EARLY:  # CANCEL arrived while the port was bound
            self._finish()
            return False
        self.respond(200, sdp)
        self._audio = asyncio.create_task(self._talk())
        return True

    async def _talk(self) -> None:
        try:
            while not self.ended.done():
                await self.peer.media.play(self.leg, self.peer.audio)
        except MediaError:
            pass

    def hang_up(self) -> None:
        endpoint = self.peer.endpoint
        endpoint.session_actions(self.handle, self.session.hangup(endpoint.now, "normal"))
        self._finish()

    def on_action(self, action: object) -> None:
        if isinstance(action, SessionEnded):
            self._finish()

    def _finish(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        if self._audio is not None:
            self._audio.cancel()
        if self.leg is not None:
            self.peer.media.release(self.leg)
        self.peer.calls.discard(self)


class SimulatedPeer:
    """Subclasses decide what to do with each INVITE in ``on_invite``."""

    name = "peer"

    def __init__(self, endpoint: SipEndpoint, media: MediaEngine, audio: Announcement) -> None:
        self.endpoint = endpoint
        self.media = media
        self.audio = audio
        self.calls: set[PeerCall] = set()
        self.invites = 0
        self._tasks: set[asyncio.Task] = set()
        endpoint.request_handler = self._on_request

    @classmethod
    async def open(cls, *, host: str, rtp_ports: tuple[int, int], audio_wav: Path, **kwargs) -> "SimulatedPeer":
        endpoint = SipEndpoint(Timers.from_settings(SipSettings()), user_agent=f"dialer-demo-{cls.name}")
        await endpoint.start((host,), 0, ("udp",))
        media = MediaEngine(RtpSettings(bind_host=host, port_min=rtp_ports[0], port_max=rtp_ports[1],
                                        inactivity_timeout_s=3600))
        return cls(endpoint, media, Announcement.load(audio_wav), **kwargs)

    @property
    def port(self) -> int:
        return next(local.port for (kind, _), local in self.endpoint.transport.locals.items() if kind == "udp")

    async def allocate_leg(self, label: str) -> MediaLeg:
        """A media leg; ports other processes hold are skipped (the pool moves past them), a few rounds at most."""
        for _ in range(ALLOCATE_ROUNDS - 1):
            try:
                return await self.media.allocate_leg(label)
            except PortsExhausted:
                await asyncio.sleep(0.01)
        return await self.media.allocate_leg(label)

    def spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_request(self, request: Request, tx: ServerTransaction, source: Address, local: LocalEnd) -> None:
        if request.method == "OPTIONS":
            self.endpoint.respond(tx, make_response(request, 200, to_tag=new_tag()))
        elif request.method == "INVITE":
            self.invites += 1
            session = InviteSession(self.endpoint.timers, f"<sip:{request.uri.user or 'peer'}@{local.hostport}>",
                                    user_agent=self.endpoint.user_agent)
            tag = new_tag()
            session.start_uas(request, tag, local.hostport, local.transport.upper())
            call: PeerCall | None = None
            handle = self.endpoint.open_session(session, source, lambda action: call and call.on_action(action))
            self.endpoint.accept_session(handle, tag)
            call = PeerCall(self, request, handle)
            self.calls.add(call)
            self.on_invite(call)
        else:
            self.endpoint.respond(tx, make_response(request, 405, to_tag=new_tag()))

    def on_invite(self, call: PeerCall) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        for call in list(self.calls):
            if call.session.phase is Phase.CONFIRMED:
                call.hang_up()
            elif call.session.phase is Phase.EARLY:
                call.respond(480)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.sleep(0.1)  # let the BYEs leave
        await self.media.close()
        await self.endpoint.close()
