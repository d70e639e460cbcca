"""Call recording to a stereo WAV (channel 0: leg A / callee, channel 1: leg B / agent), written as the call goes.

The loop side (`feed`, called per RTP packet) only appends (position, packet) to a list. Every flush interval (each
recording on its own timer, so flushes of many calls are spread out) the loop decodes G.711 with numpy and places
the samples by RTP timestamp (jitter and reordering do not shift audio; lost packets leave silence), a vectorised
step of well under a millisecond. The bytes go to one writer thread shared by all recordings, which only makes the
write syscalls (appending frames, rewriting the RIFF sizes), so a slow disk never stalls the loop and the thread
holds the GIL for microseconds. A crash loses at most flush interval + jitter allowance of audio, and the file on
disk always opens with `wave`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sip.media import g711

log = logging.getLogger(__name__)
RATE = g711.SAMPLE_RATE
CHANNELS = 2
_REANCHOR_DRIFT_SAMPLES = RATE  # a source whose timestamps drift a second from the wall clock is re-anchored


def wav_header(data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, CHANNELS, RATE, RATE * CHANNELS * 2, CHANNELS * 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


@dataclass(slots=True)
class _ChannelAnchor:
    ssrc: int = -1
    timestamp: int = 0
    position: int = 0
    pending: list[tuple[int, bytes, int, str]] = field(default_factory=list)  # (position, packet, start, codec)
    last_position: int = 0
    last_arrival: float = 0.0


class _Mixer:
    """Loop side: places decoded samples by position and hands out whole frames up to a flush point."""

    def __init__(self) -> None:
        self.written: int | None = None  # position of the next frame to hand out
        self.carry: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0, np.int64), np.empty(0, np.int16))] * 2
        self.late_samples = 0

    @staticmethod
    def _samples(fragments: list[tuple[int, bytes, int, str]]) -> tuple[np.ndarray, np.ndarray]:
        if not fragments:
            return np.empty(0, np.int64), np.empty(0, np.int16)
        codec = fragments[0][3]
        payloads = [packet[start:] for _, packet, start, _ in fragments]
        expected = fragments[0][0]
        for (position, _, _, fragment_codec), payload in zip(fragments, payloads):
            if position != expected or fragment_codec != codec:
                break
            expected += len(payload)
        else:  # the usual case: in order, no loss, one codec
            samples = g711.decode(b"".join(payloads), codec)
            return np.arange(fragments[0][0], fragments[0][0] + samples.size, dtype=np.int64), samples
        positions, decoded = [], []
        for codec in {f[3] for f in fragments}:
            group = [f for f in fragments if f[3] == codec]
            payloads = [packet[start:] for _, packet, start, _ in group]
            lengths = np.fromiter((len(p) for p in payloads), np.int64, len(payloads))
            starts = np.fromiter((f[0] for f in group), np.int64, len(group))
            offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            positions.append(np.repeat(starts, lengths) + offsets)
            decoded.append(g711.decode(b"".join(payloads), codec))
        return np.concatenate(positions), np.concatenate(decoded)

    def mix(self, fragments: tuple[list, list], upto: int | None) -> bytes:
        """Interleaved 16-bit frames from `written` to `upto` (None: to the last sample received)."""
        channels = []
        for ch in range(CHANNELS):
            pos, samples = self._samples(fragments[ch])
            carry_pos, carry_samples = self.carry[ch]
            channels.append((np.concatenate((carry_pos, pos)), np.concatenate((carry_samples, samples))))
        if self.written is None:  # the file starts at the earliest sample received so far, not at bridge time
            received = [int(p.min()) for p, _ in channels if p.size]
            if not received:
                return b""
            self.written = min(received)
        if upto is None:
            upto = max([self.written] + [int(p.max()) + 1 for p, _ in channels if p.size])
        span = max(0, upto - self.written)
        frames = np.zeros((span, CHANNELS), dtype="<i2")
        for ch, (pos, samples) in enumerate(channels):
            index = pos - self.written
            late = index < 0
            ahead = index >= span
            self.late_samples += int(late.sum())
            keep = ~(late | ahead)
            frames[index[keep], ch] = samples[keep]
            self.carry[ch] = (pos[ahead], samples[ahead])
        self.written += span
        return frames.tobytes()


class _WavFile:
    """Writer-thread side: appends frames and rewrites the RIFF sizes; holds the GIL only around syscalls."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(self.fd, wav_header(0))
        self.data_bytes = 0

    def append(self, frames: bytes) -> None:
        if not frames:
            return
        os.write(self.fd, frames)  # goes to the kernel at once: survives a crash of this process
        self.data_bytes += len(frames)
        os.pwrite(self.fd, struct.pack("<I", 36 + self.data_bytes), 4)
        os.pwrite(self.fd, struct.pack("<I", self.data_bytes), 40)

    def close(self) -> None:
        os.close(self.fd)


def _log_failure(job) -> None:
    if job.exception() is not None:
        log.error("recording write failed", exc_info=job.exception())


class CallRecording:
    """One bridged call's recording. `feed` is the per-packet entry point (loop thread)."""

    def __init__(self, path: Path, executor: ThreadPoolExecutor, flush_interval_s: float = 0.5, jitter_s: float = 0.2,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.path = Path(path)
        self._loop = loop or asyncio.get_running_loop()
        self._executor = executor
        self._flush_interval_s = flush_interval_s
        self._jitter_samples = int(jitter_s * RATE)
        self._start = time.perf_counter()
        self._channels = (_ChannelAnchor(), _ChannelAnchor())
        # concurrent.futures (not asyncio) futures: the writer thread reads them; jobs run in order on one thread
        self._file_future = executor.submit(_WavFile, self.path)
        self._mixer = _Mixer()
        self._closed: asyncio.Future | None = None
        self._timer = self._loop.call_later(flush_interval_s, self._flush)
        self.flush_seconds_max = 0.0  # longest time the loop spent handing one flush over, for benchmarks

    def feed(self, channel: int, packet: bytes, start: int, codec: str, timestamp: int, ssrc: int,
             now: float) -> None:
        anchor = self._channels[channel]
        if ssrc != anchor.ssrc:
            anchor.ssrc = ssrc
            anchor.timestamp = timestamp
            anchor.position = int((now - self._start) * RATE)
        offset = (timestamp - anchor.timestamp) & 0xFFFFFFFF
        if offset >= 0x80000000:
            offset -= 0x100000000
        position = anchor.position + offset
        anchor.pending.append((position, packet, start, codec))
        anchor.last_position = position
        anchor.last_arrival = now

    def _take(self) -> tuple[list, list]:
        taken = []
        for anchor in self._channels:
            taken.append(anchor.pending)
            anchor.pending = []
            expected = int((anchor.last_arrival - self._start) * RATE)
            if anchor.ssrc != -1 and abs(anchor.last_position - expected) > _REANCHOR_DRIFT_SAMPLES:
                anchor.ssrc = -1  # timestamps jumped (stream restart without a new SSRC): re-anchor
        return taken[0], taken[1]

    def _submit(self, fragments: tuple[list, list], upto: int | None) -> None:
        frames = self._mixer.mix(fragments, upto)
        file_future = self._file_future
        self._executor.submit(lambda: file_future.result().append(frames)).add_done_callback(_log_failure)

    def _flush(self) -> None:
        began = time.perf_counter()
        upto = int((began - self._start) * RATE) - self._jitter_samples
        self._submit(self._take(), max(upto, 0))
        self._timer = self._loop.call_later(self._flush_interval_s, self._flush)
        self.flush_seconds_max = max(self.flush_seconds_max, time.perf_counter() - began)

    def close(self) -> asyncio.Future:
        """Stop recording: the remaining audio is written and the header finalised in the writer thread."""
        if self._closed is None:
            self._timer.cancel()
            self._submit(self._take(), None)
            file_future = self._file_future
            self._closed = asyncio.wrap_future(
                self._executor.submit(lambda: file_future.result().close()), loop=self._loop
            )
        return self._closed

    @property
    def late_samples(self) -> int:
        """Samples that arrived after their place had been written (beyond the jitter allowance)."""
        return self._mixer.late_samples
