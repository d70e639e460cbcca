"""Announcements: a WAV file decoded, resampled to 8 kHz mono and encoded to G.711 once, at load."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from sip.media import g711


class AnnouncementError(ValueError):
    """A WAV file we cannot play."""


@dataclass(frozen=True, slots=True, eq=False)
class Announcement:
    codec: str
    ptime_ms: int
    frames: tuple[bytes, ...]  # one RTP payload per ptime, last one padded with silence
    pcm: np.ndarray = field(repr=False)  # 8 kHz mono int16, kept to convert to the other codec
    source: str = ""
    _variants: dict[tuple[str, int], "Announcement"] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, wav_path: str | Path, codec: str = "PCMU", ptime_ms: int = 20) -> "Announcement":
        path = Path(wav_path)
        try:
            with wave.open(str(path), "rb") as wav:
                channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
                raw = wav.readframes(wav.getnframes())
        except (OSError, EOFError, wave.Error) as exc:
            raise AnnouncementError(f"{path}: cannot read as WAV ({exc})") from None
        if width != 2:
            raise AnnouncementError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is supported")
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1)
        if rate != g711.SAMPLE_RATE:
            divisor = gcd(rate, g711.SAMPLE_RATE)
            samples = resample_poly(samples, g711.SAMPLE_RATE // divisor, rate // divisor)
        if samples.size == 0:
            raise AnnouncementError(f"{path}: holds no audio")
        pcm = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
        return cls._encode(pcm, g711.check_codec(codec), ptime_ms, str(path))

    @classmethod
    def _encode(cls, pcm: np.ndarray, codec: str, ptime_ms: int, source: str) -> "Announcement":
        per_frame = g711.SAMPLE_RATE * ptime_ms // 1000
        padded = np.zeros(-(-pcm.size // per_frame) * per_frame, dtype=np.int16)
        padded[: pcm.size] = pcm
        encoded = g711.encode(padded, codec)
        frames = tuple(encoded[i: i + per_frame] for i in range(0, len(encoded), per_frame))
        pcm.setflags(write=False)
        return cls(codec, ptime_ms, frames, pcm, source)

    def for_codec(self, codec: str, ptime_ms: int | None = None) -> "Announcement":
        """The same audio in another codec/ptime (encoded on first use from the PCM kept at load, then cached)."""
        ptime_ms = ptime_ms or self.ptime_ms
        if codec == self.codec and ptime_ms == self.ptime_ms:
            return self
        key = (g711.check_codec(codec), ptime_ms)
        if key not in self._variants:  # converted once per codec, then reused by every call
            self._variants[key] = self._encode(self.pcm, codec, ptime_ms, self.source)
        return self._variants[key]

    @property
    def duration_s(self) -> float:
        return len(self.frames) * self.ptime_ms / 1000
