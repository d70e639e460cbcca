"""Runs pjsua_peer.py user agents as child processes and measures the audio they and the switch recorded."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Mapping

import numpy as np

from sip.settings import RtpSettings, SipSettings, TrunkSettings
from sip.switch import AgentCredentials, Answered, Call, EarlyMedia, Ringing, Switch
from tests.ports import free_port, port_in_use

PEER_SCRIPT = Path(__file__).with_name("pjsua_peer.py")
ANNOUNCEMENT = Path(__file__).resolve().parents[3] / "config" / "announcements" / "abandoned.wav"
PACKETS_PER_S = 50  # G.711 at 20 ms
PEER_RTP_PORTS = (51000, 51998)  # the switch under test takes 50000-50999; both inside the tests' 50000-54999
START_TIMEOUT_S = 10.0
SWITCH_RTP = RtpSettings(port_min=50000, port_max=50999)


def switch_sip_settings() -> SipSettings:
    return SipSettings(bind_host="127.0.0.1", port=0, transports=("udp", "tcp"), stop_grace_s=1.0)


async def start_switch(callee_ua: PjsuaPeer | None, agents: Iterable[AgentCredentials] = (), *,
                       transport: Literal["udp", "tcp"] = "udp", sip: Mapping[str, object] | None = None,
                       rtp: Mapping[str, object] | None = None) -> Switch:
    """A Switch on loopback with a trunk named "pjsua" pointing at the callee UA (if any)."""
    trunks = [] if callee_ua is None else [
        TrunkSettings(name="pjsua", host="127.0.0.1", port=callee_ua.port, transport=transport, options_enabled=False)]
    return await Switch.start(switch_sip_settings().model_copy(update=dict(sip or {})),
                              SWITCH_RTP.model_copy(update=dict(rtp or {})), trunks, list(agents))


def free_rtp_base() -> int:
    for _ in range(200):
        base = random.randrange(PEER_RTP_PORTS[0], PEER_RTP_PORTS[1] - 40, 2)
        if not port_in_use(base) and not port_in_use(base + 1):
            return base
    raise RuntimeError("no free RTP port pair for a pjsua peer")


class PjsuaPeer:
    """One pjsua2 user agent process. `events` holds what it reported, in order."""

    def __init__(self, workdir: Path, name: str, role: str, *, tone_hz: int = 0, record: bool = True,
                 registrar: str | None = None, user: str = "peer", password: str | None = None,
                 duration_s: float = 25.0, answer_delay_s: float = 0.2, answer_code: int = 200,
                 early_media: bool = False, transport: str = "udp") -> None:
        self.name = name
        self.port = free_port()
        self.recording = workdir / f"{name}-received.wav" if record else None
        self.log = workdir / f"{name}-pjsip.log"
        self.args = [sys.executable, str(PEER_SCRIPT), "--role", role, "--port", str(self.port),
                     "--rtp-port", str(free_rtp_base()), "--user", user, "--tone-hz", str(tone_hz),
                     "--duration", str(duration_s), "--answer-delay", str(answer_delay_s), "--log", str(self.log),
                     "--answer-code", str(answer_code), "--transport", transport]
        if early_media:
            self.args.append("--early-media")
        if self.recording is not None:
            self.args += ["--record", str(self.recording)]
        if registrar:
            self.args += ["--registrar", registrar, "--password", password or ""]
        self.events: list[dict] = []
        self._arrived = asyncio.Condition()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> PjsuaPeer:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        await self.wait_for("ready", START_TIMEOUT_S)
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # pjsip may print to stdout before logging is set up
            async with self._arrived:
                self.events.append(event)
                self._arrived.notify_all()
        async with self._arrived:
            self.events.append({"event": "exited"})
            self._arrived.notify_all()

    async def wait_for(self, name: str, timeout_s: float, **fields: object) -> dict:
        """The first reported event called `name` whose fields match; fails with the peer's story otherwise."""

        def found() -> dict | None:
            for event in self.events:
                if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            return None

        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(
                    lambda: found() is not None or any(e["event"] == "exited" for e in self.events)), timeout_s)
            except asyncio.TimeoutError:
                pass
        event = found()
        if event is None:
            raise AssertionError(f"{self.name}: no {name} {fields or ''} within {timeout_s} s; "
                                 f"events {self.events}; stderr {await self._stderr()!r}")
        return event

    async def _stderr(self) -> str:
        """What the peer wrote to stderr, if it has exited (a pjsip assertion, a Python traceback)."""
        if self.process is None or self.process.stderr is None:
            return ""
        try:
            await asyncio.wait_for(self.process.wait(), 0.5)
        except asyncio.TimeoutError:
            return "(still running)"
        return (await self.process.stderr.read()).decode(errors="replace")[-2000:]

    def command(self, text: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")

    async def stop(self, timeout_s: float = 5.0) -> int | None:
        """Ask the peer to quit (it closes its recording properly), kill it if it does not."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            try:
                self.command("quit")
                await asyncio.wait_for(self.process.wait(), timeout_s)
            except (asyncio.TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 2)
        return self.process.returncode


# ------------------------------------------------------------------ audio measurement
@dataclass(frozen=True, slots=True)
class Spectrum:
    peak_hz: float
    tone_share: float  # share of the signal's energy within +-20 Hz of the asked frequency


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float (frames x channels) and the sample rate."""
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2, f"{path}: {8 * wav.getsampwidth()}-bit samples"
        raw = wav.readframes(wav.getnframes())
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64).reshape(-1, wav.getnchannels())
        return samples, wav.getframerate()


def audible(samples: np.ndarray, rate: int, threshold: float = 300.0) -> np.ndarray:
    """The samples from the first to the last 20 ms block whose RMS is above `threshold` (silence trimmed)."""
    block = rate // 50
    blocks = samples[: len(samples) // block * block].reshape(-1, block)
    loud = np.flatnonzero(np.sqrt((blocks ** 2).mean(axis=1)) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * block:(loud[-1] + 1) * block]


def spectrum(samples: np.ndarray, rate: int, tone_hz: float) -> Spectrum:
    """Peak frequency (parabolic interpolation between FFT bins, Hann window) and the tone's energy share."""
    if len(samples) < rate // 10:
        return Spectrum(0.0, 0.0)
    windowed = (samples - samples.mean()) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    peak = int(np.argmax(power[1:])) + 1
    offset = 0.0
    if 0 < peak < len(power) - 1:
        a, b, c = np.log(power[peak - 1:peak + 2] + 1e-12)
        offset = 0.5 * (a - c) / (a - 2 * b + c)
    band = np.abs(freqs - tone_hz) <= 20
    return Spectrum(float(freqs[peak] + offset * rate / len(samples)), float(power[band].sum() / power.sum()))


def dominant_per_block(samples: np.ndarray, rate: int, block_s: float) -> list[float]:
    """The peak frequency of each block of `block_s` seconds (0 for silent blocks)."""
    size = int(rate * block_s)
    peaks = []
    for start in range(0, len(samples) - size + 1, size):
        block = samples[start:start + size]
        if np.sqrt((block ** 2).mean()) < 300:
            peaks.append(0.0)
            continue
        power = np.abs(np.fft.rfft(block * np.hanning(size))) ** 2
        peaks.append(float(np.fft.rfftfreq(size, 1 / rate)[int(np.argmax(power))]))
    return peaks


def runs(peaks: list[float], tolerance_hz: float = 15.0) -> list[float]:
    """Consecutive blocks with the same peak (within tolerance) collapsed to one; silence dropped."""
    out: list[float] = []
    for peak in peaks:
        if peak and not (out and abs(out[-1] - peak) <= tolerance_hz):
            out.append(peak)
    return out


# ------------------------------------------------------------------ the bridged call both tests of the audio path make
CALLEE_HZ = 440
AGENT_HZ = 1000
BRIDGED_S = 2.0
PEAK_TOLERANCE_HZ = 5.0
MIN_TONE_SHARE = 0.8  # G.711 quantisation noise and the bridge's switch-on edges leave the rest


async def answered(call: Call) -> None:
    async for event in call.events():
        if isinstance(event, Answered):
            return
        if not isinstance(event, (Ringing, EarlyMedia)):
            raise AssertionError(f"{call!r}: {event}")


async def answered_by(call: Call, ua: PjsuaPeer, timeout_s: float = 10.0) -> None:
    try:
        await asyncio.wait_for(answered(call), timeout_s)
    except asyncio.TimeoutError:
        raise AssertionError(f"{call!r} not answered in {timeout_s} s; {ua.name} reported {ua.events}") from None


async def call_and_bridge(switch: Switch, trunk: str, callee_ua: PjsuaPeer, agent: str, agent_ua: PjsuaPeer,
                          workdir: Path) -> tuple[Call, Call, Path]:
    """Originate to the callee UA on `trunk`, call the agent UA (URI or agent id), bridge them with recording for
    BRIDGED_S seconds. Returns both calls, still up, and the recording path."""
    callee = await switch.originate(trunk, "+15551230042", "+15550001111", {}, 10)
    await answered_by(callee, callee_ua)
    agent_call = await switch.call_agent(agent)
    await answered_by(agent_call, agent_ua)
    for ua in (callee_ua, agent_ua):
        await ua.wait_for("confirmed", 5)
        assert (await ua.wait_for("media", 5))["codec"] in ("PCMU", "PCMA")
    recording = workdir / "call.wav"
    await switch.bridge(callee, agent_call, recording)
    await asyncio.sleep(BRIDGED_S)
    relayed = (callee.leg.stats.snapshot(), agent_call.leg.stats.snapshot())
    assert callee.leg.stats.packets_relayed > 50 and agent_call.leg.stats.packets_relayed > 50, relayed
    return callee, agent_call, recording


def assert_tone(path: Path, channel: int, tone_hz: float, what: str) -> float:
    samples, rate = read_wav(path)
    heard = audible(samples[:, channel], rate)
    assert len(heard) >= rate, f"{what}: only {len(heard) / rate:.2f} s of audio in {path.name}"
    measured = spectrum(heard, rate, tone_hz)
    assert abs(measured.peak_hz - tone_hz) <= PEAK_TOLERANCE_HZ, f"{what}: peak at {measured.peak_hz:.1f} Hz"
    assert measured.tone_share >= MIN_TONE_SHARE, f"{what}: {tone_hz} Hz holds {measured.tone_share:.2%} of energy"
    print(f"{what}: peak {measured.peak_hz:.2f} Hz, tone share {measured.tone_share:.3f}, "
          f"{len(heard) / rate:.2f} s audible")
    return measured.peak_hz


def assert_tones_crossed(callee_ua: PjsuaPeer, agent_ua: PjsuaPeer, recording: Path) -> None:
    """Each UA heard the other's tone; our recording holds the callee's on channel 0, the agent's on channel 1."""
    assert callee_ua.recording is not None and agent_ua.recording is not None
    assert_tone(agent_ua.recording, 0, CALLEE_HZ, "agent heard")
    assert_tone(callee_ua.recording, 0, AGENT_HZ, "callee heard")
    assert_tone(recording, 0, CALLEE_HZ, "recording, callee channel")
    assert_tone(recording, 1, AGENT_HZ, "recording, agent channel")
