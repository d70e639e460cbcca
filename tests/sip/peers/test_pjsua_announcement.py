"""Switch.play on a pjsua2 callee: what the callee's PJSIP stack records is the announcement WAV (the chime's notes
in order, correlated sample for sample), paced in real time, in whichever G.711 law was negotiated."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate

from sip.settings import TrunkSettings
from sip.switch import Switch
from tests.sip.peers.harness import (
    SWITCH_RTP, answered, audible, dominant_per_block, read_wav, switch_sip_settings,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]

ANNOUNCEMENT = Path(__file__).resolve().parents[3] / "config" / "announcements" / "abandoned.wav"
NOTE_S = 0.25  # the default chime's note length (sip/media/make_default_announcement.py)
MIN_CORRELATION = 0.9  # G.711 quantisation keeps the normalised correlation of a clean path above 0.99


def best_alignment(received: np.ndarray, sent: np.ndarray) -> tuple[int, float]:
    """The lag of `sent` inside `received` and the normalised correlation there."""
    scores = correlate(received, sent, mode="valid", method="fft")
    lag = int(np.argmax(scores))
    window = received[lag:lag + len(sent)]
    return lag, float(scores[lag] / (np.linalg.norm(window) * np.linalg.norm(sent) + 1e-9))


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_announcement_reaches_the_callee(pjsua, codec: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee")
    trunk = TrunkSettings(name="pjsua", host="127.0.0.1", port=callee_ua.port, options_enabled=False)
    rtp = SWITCH_RTP.model_copy(update={"codecs": (codec,)})
    switch = await Switch.start(switch_sip_settings(), rtp, [trunk], [])
    sent, sent_rate = read_wav(ANNOUNCEMENT)
    sent = sent[:, 0]
    try:
        callee = await switch.originate("pjsua", "+15551230042", "+15550001111", {}, 10)
        await asyncio.wait_for(answered(callee), 10)
        assert (await callee_ua.wait_for("media", 5))["codec"] == codec
        started = time.monotonic()
        await switch.play(callee, ANNOUNCEMENT)
        played_s = time.monotonic() - started
        await asyncio.sleep(0.3)  # the last frames through PJSIP's jitter buffer
        await switch.hangup(callee)
        await asyncio.wait_for(asyncio.shield(callee.done), 5)
        await callee_ua.wait_for("stopped", 5)
    finally:
        await switch.stop()
    duration_s = len(sent) / sent_rate
    assert played_s >= 0.9 * duration_s, f"{duration_s:.2f} s of audio sent in {played_s:.2f} s: not paced"

    assert callee_ua.recording is not None
    received, rate = read_wav(callee_ua.recording)
    assert rate == sent_rate == 8000
    received = received[:, 0]
    lag, correlation = best_alignment(received, sent)
    print(f"{codec}: correlation {correlation:.4f} at {lag / rate:.3f} s; play took {played_s:.3f} s "
          f"for {duration_s:.3f} s of audio")
    assert correlation >= MIN_CORRELATION
    aligned = received[lag:lag + len(sent)]
    notes_heard = dominant_per_block(aligned, rate, NOTE_S)
    notes_sent = dominant_per_block(sent, rate, NOTE_S)
    print(f"{codec}: notes sent {notes_sent}, heard {notes_heard}")
    assert notes_heard == notes_sent and len([n for n in notes_sent if n]) == 6
    energy_ratio = float(np.sum(aligned ** 2) / np.sum(sent ** 2))
    print(f"{codec}: energy ratio received/sent {energy_ratio:.3f}")
    assert 0.5 < energy_ratio < 2.0, f"level changed on the way: energy ratio {energy_ratio:.2f}"
    assert len(audible(received, rate)) <= len(audible(sent, rate)) + rate // 10  # played once, nothing else
