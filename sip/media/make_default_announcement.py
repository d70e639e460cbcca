"""Writes the default abandoned-call announcement: a three-note chime, a pause, the chime again (8 kHz mono 16-bit).

Regulators require a recorded message identifying the caller on abandoned calls; deployments replace this file
with their own recording (config/announcements/abandoned.wav). Run: python -m sip.media.make_default_announcement
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np

RATE = 8000
NOTES_HZ = (523.25, 659.25, 783.99)  # C5 E5 G5
NOTE_S = 0.25
PAUSE_S = 0.5
AMPLITUDE = 0.3 * 32767


def chime() -> np.ndarray:
    t = np.arange(int(NOTE_S * RATE)) / RATE
    envelope = np.minimum(1.0, np.minimum(t, NOTE_S - t) / 0.02)  # 20 ms fades: no clicks
    return np.concatenate([np.sin(2 * np.pi * f * t) * envelope for f in NOTES_HZ])


def announcement() -> np.ndarray:
    pause = np.zeros(int(PAUSE_S * RATE))
    return np.round(np.concatenate([chime(), pause, chime(), pause]) * AMPLITUDE).astype("<i2")


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(announcement().tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=Path("config/announcements/abandoned.wav"))
    write(parser.parse_args().path)


if __name__ == "__main__":
    main()
