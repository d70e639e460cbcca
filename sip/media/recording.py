"""Call recording to a stereo WAV (channel 0: leg A / callee, channel 1: leg B / agent), written as the call goes.

Each channel keeps a timeline of G.711 code bytes (silence where nothing arrived) starting at the first frame not
yet written. `feed`, called per RTP packet on the loop, copies the payload into its channel's timeline at the place
its RTP timestamp gives (anchored to the arrival time of the source's first packet), so jitter and reordering do
not shift audio and lost packets leave silence. Every flush interval (each recording on its own timer, so flushes
of many calls spread out) the frames older than the jitter allowance are decoded with two `bytes.translate` tables
(low and high byte of the 16-bit sample) straight into interleaved stereo: a few C calls, no per-sample Python. The
bytes go to one writer thread shared by all recordings, which only makes the write syscalls (append, rewrite the
RIFF sizes), batched for all recordings every 0.1 s: a slow disk never stalls the loop. A crash loses at most
flush interval + jitter allowance + 0.1 s of audio (0.8 s by default), and the file on disk always opens with
`wave`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sip.media import g711

log = logging.getLogger(__name__)
RATE = g711.SAMPLE_RATE
CHANNELS = 2
_REANCHOR_DRIFT_SAMPLES = RATE  # a source whose timestamps drift a second from the wall clock is re-anchored
_SILENCE_RUN = RATE * 2


def wav_header(data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, CHANNELS, RATE, RATE * CHANNELS * 2, CHANNELS * 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


def _byte_tables(codec: str) -> tuple[bytes, bytes]:
    little_endian = g711.DECODE_TABLES[codec].astype("<i2").tobytes()
    return little_endian[0::2], little_endian[1::2]


_LOW_HIGH = {codec: _byte_tables(codec) for codec in ("PCMU", "PCMA")}
_SILENCE = {codec: bytes([code]) * _SILENCE_RUN for codec, code in g711.SILENCE.items()}


@dataclass(slots=True)
class _Channel:
    codec: str | None = None
    timeline: bytearray = field(default_factory=bytearray)  # G.711 codes from the recording's next frame on
    ssrc: int = -1
    anchor_timestamp: int = 0
    anchor_position: int = 0
    last_position: int = 0
    last_arrival: float = 0.0

    def pad_to(self, length: int) -> None:
        silence = _SILENCE[self.codec or "PCMU"]
        while len(self.timeline) < length:
            self.timeline += silence[: length - len(self.timeline)]


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
        os.write(self.fd, frames)  # in the kernel at once: survives a crash of this process
        self.data_bytes += len(frames)
        os.pwrite(self.fd, struct.pack("<I", 36 + self.data_bytes), 4)
        os.pwrite(self.fd, struct.pack("<I", self.data_bytes), 40)

    def close(self) -> None:
        os.close(self.fd)


def _run_batch(jobs: list) -> None:
    for job in jobs:
        try:
            job()
        except Exception:  # one bad file (disk full, removed directory) must not stop the others
            log.exception("recording write failed")


class RecordingWriter:
    """The one writer thread of all recordings. Appends are batched: the loop hands the thread one batch per
    `batch_interval_s` instead of one job per recording flush (each hand-off costs the loop ~0.1 ms of
    thread wake-up and GIL traffic)."""

    def __init__(self, batch_interval_s: float = 0.1) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self._batch_interval_s = batch_interval_s
        self._batch: list = []
        self._timer: asyncio.TimerHandle | None = None

    def open(self, path: Path) -> Future:
        return self._executor.submit(_WavFile, path)

    def append(self, file_future: Future, frames: bytes) -> None:
        self._batch.append(lambda: file_future.result().append(frames))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._batch_interval_s, self._submit)

    def _submit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._batch:
            batch, self._batch = self._batch, []
            self._executor.submit(_run_batch, batch)

    def close(self, file_future: Future) -> asyncio.Future:
        """Writes what is pending, then closes the file; the future completes when it is closed."""
        self._submit()
        return asyncio.wrap_future(self._executor.submit(lambda: file_future.result().close()))

    async def shutdown(self) -> None:
        """Writes what is pending and stops the thread (waited for off the loop)."""
        self._submit()
        await asyncio.to_thread(self._executor.shutdown, True)


class CallRecording:
    """One bridged call's recording. `feed` is the per-packet entry point (loop thread)."""

    def __init__(self, path: Path, writer: RecordingWriter, flush_interval_s: float = 0.5, jitter_s: float = 0.2,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.path = Path(path)
        self._loop = loop or asyncio.get_running_loop()
        self._writer = writer
        self._flush_interval_s = flush_interval_s
        self._jitter_samples = int(jitter_s * RATE)
        self._start = time.perf_counter()
        self._channels = (_Channel(), _Channel())
        self._base: int | None = None  # position (samples since start) of the timelines' first byte
        self._flushed = False
        self.late_samples = 0  # arrived after their place had been written (beyond the jitter allowance)
        # a concurrent.futures future: read by the writer thread, whose jobs run in order
        self._file_future = writer.open(self.path)
        self._closed: asyncio.Future | None = None
        self._timer = self._loop.call_later(flush_interval_s, self._flush)
        self.flush_seconds_max = 0.0  # longest time the loop spent on one flush, for benchmarks

    def feed(self, channel: int, packet: bytes, start: int, codec: str, timestamp: int, ssrc: int,
             now: float) -> None:
        state = self._channels[channel]
        if ssrc != state.ssrc:
            state.ssrc = ssrc
            state.anchor_timestamp = timestamp
            state.anchor_position = round((now - self._start) * RATE)
        offset = (timestamp - state.anchor_timestamp) & 0xFFFFFFFF
        if offset >= 0x80000000:
            offset -= 0x100000000
        position = state.anchor_position + offset
        state.last_position = position
        state.last_arrival = now
        payload = packet[start:]
        if state.codec is None:
            state.codec = codec
        elif codec != state.codec:  # re-INVITE changed the law mid-call: keep one law per channel
            payload = payload.translate(g711.transcode_table(codec, state.codec))
        if self._base is None:
            self._base = position
        place = position - self._base
        if place < 0:
            if self._flushed or -place > _SILENCE_RUN:
                self.late_samples += min(-place, len(payload))
                payload = payload[-place:]
                place = 0
            else:  # reordered before the first flush: the file simply starts earlier
                for other in self._channels:
                    other.timeline[0:0] = _SILENCE[other.codec or "PCMU"][:-place]
                self._base = position
                place = 0
        end = place + len(payload)
        timeline = state.timeline
        if end > len(timeline):
            state.pad_to(end)
        timeline[place:end] = payload

    def _frames(self, count: int) -> bytes:
        """Interleaved 16-bit stereo for the next `count` frames; drops them from the timelines."""
        frames = bytearray(count * CHANNELS * 2)
        for index, state in enumerate(self._channels):
            state.pad_to(count)
            codes = state.timeline[:count]
            del state.timeline[:count]
            low, high = _LOW_HIGH[state.codec or "PCMU"]
            frames[2 * index::4] = codes.translate(low)
            frames[2 * index + 1::4] = codes.translate(high)
            expected = int((state.last_arrival - self._start) * RATE)
            if state.ssrc != -1 and abs(state.last_position - expected) > _REANCHOR_DRIFT_SAMPLES:
                state.ssrc = -1  # timestamps jumped (stream restart without a new SSRC): re-anchor
        return bytes(frames)

    def _write(self, count: int) -> None:
        if self._base is None or count <= 0:
            return
        frames = self._frames(count)
        self._base += count
        self._flushed = True
        self._writer.append(self._file_future, frames)

    def _flush(self) -> None:
        began = time.perf_counter()
        if self._base is not None:
            upto = int((began - self._start) * RATE) - self._jitter_samples
            self._write(upto - self._base)
        self._timer = self._loop.call_later(self._flush_interval_s, self._flush)
        self.flush_seconds_max = max(self.flush_seconds_max, time.perf_counter() - began)

    def close(self) -> asyncio.Future:
        """Stop recording: the remaining audio is written and the file closed in the writer thread."""
        if self._closed is None:
            self._timer.cancel()
            self._write(max(len(state.timeline) for state in self._channels))
            self._closed = self._writer.close(self._file_future)
        return self._closed
