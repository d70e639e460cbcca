"""Switch.play on a pjsua2 callee: what the callee's PJSIP stack records is the announcement WAV (the chime's notes
in order, correlated sample for sample), paced in real time, in whichever G.711 law was negotiated."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from scipy.signal import correlate

from sip.media.make_default_announcement import NOTES_HZ
from tests.sip.peers.harness import (
    ANNOUNCEMENT, answered, audible, dominant_per_block, read_wav, runs, start_switch,
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(60)]

MIN_CORRELATION = 0.9  # G.711 quantisation keeps the normalised correlation of a clean path above 0.99
CHUNK_S = 0.1
MIN_MATCHING_CHUNKS = 0.85  # a playout slip in PJSIP (its clock thread late on a loaded machine) spoils a chunk
SEARCH_S = 0.06


def best_alignment(received: np.ndarray, sent: np.ndarray) -> tuple[int, float]:
    """The lag of `sent` inside `received` with the highest normalised correlation, and that correlation."""
    scores = correlate(received, sent, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(received ** 2)])
    window_norms = np.sqrt(np.maximum(energy[len(sent):] - energy[:-len(sent)], 0.0))
    normalised = scores / (window_norms * np.linalg.norm(sent) + 1e-9)
    lag = int(np.argmax(normalised))
    return lag, float(normalised[lag])


def chunk_correlations(received: np.ndarray, sent: np.ndarray, lag: int, rate: int) -> list[float]:
    """Each loud CHUNK_S piece of `sent` (fades and pauses left out), found in `received` within SEARCH_S of `lag`:
    its correlation there. Aligning pieces one by one tells a receiver's playout slip (one piece spoilt) from wrong
    audio (all of them)."""
    size, search = int(CHUNK_S * rate), int(SEARCH_S * rate)
    starts = range(0, len(sent) - size + 1, size)
    loudness = {start: float(np.sqrt((sent[start:start + size] ** 2).mean())) for start in starts}
    out = []
    for start in starts:
        piece = sent[start:start + size]
        if loudness[start] < 0.5 * max(loudness.values()):
            continue
        low = max(0, lag + start - search)
        _, correlation = best_alignment(received[low:lag + start + size + search], piece)
        out.append(correlation)
    return out


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_announcement_reaches_the_callee(pjsua, codec: str) -> None:  # type: ignore[no-untyped-def]
    callee_ua = await pjsua("callee", "callee")
    switch = await start_switch(callee_ua, rtp={"codecs": (codec,)})
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
        callee_ua.command("stats")
        stats = await callee_ua.wait_for("stats", 5)
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
    print(f"{codec}: PJSIP receive statistics {stats}")
    assert (stats["lost"], stats["duplicated"], stats["reordered"], stats["discarded"]) == (0, 0, 0, 0)
    lag, correlation = best_alignment(received, sent)
    chunks = chunk_correlations(received, sent, lag, rate)
    matching = sum(c >= MIN_CORRELATION for c in chunks) / len(chunks)
    print(f"{codec}: correlation {correlation:.4f} at {lag / rate:.3f} s, {matching:.0%} of {len(chunks)} chunks "
          f"above {MIN_CORRELATION} (min {min(chunks):.3f}); play took {played_s:.3f} s for {duration_s:.3f} s of audio")
    assert len(chunks) >= 10 and matching >= MIN_MATCHING_CHUNKS, [round(c, 3) for c in chunks]
    aligned = received[lag:lag + len(sent)]
    notes_heard = runs(dominant_per_block(aligned, rate, CHUNK_S))
    print(f"{codec}: notes heard {notes_heard}")
    assert len(notes_heard) == 6 and all(abs(h - e) <= 15 for h, e in zip(notes_heard, 2 * NOTES_HZ)), notes_heard
    energy_ratio = float(np.sum(aligned ** 2) / np.sum(sent ** 2))
    print(f"{codec}: energy ratio received/sent {energy_ratio:.3f}")
    assert 0.5 < energy_ratio < 2.0, f"level changed on the way: energy ratio {energy_ratio:.2f}"
    assert len(audible(received, rate)) <= len(audible(sent, rate)) + rate // 10  # played once, nothing else
