"""What the SIPp-driven benchmarks share: free ports, starting SIPp as a UAS and reading its figures, the G.711 file
SIPp streams, CPU readings, percentiles, and writing results (JSON and a matplotlib Agg figure).

Used by sip_cps.py, sip_bridged.py and sip_answer_to_bridge.py (and tests/sip/test_bench_scenarios.py through them).
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import math
import os
import platform
import resource
import shutil
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Sequence

import numpy as np

from tests.ports import free_port, port_in_use

if TYPE_CHECKING:
    from sip.switch import Call, Switch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCENARIOS = ROOT / "benchmarks" / "scenarios"
STREAM_FILE = "stream.ulaw"  # the name benchmarks/scenarios/uas_rtp_stream.xml plays, in SIPp's working directory
STREAM_PCAP = "stream.pcap"  # the capture benchmarks/scenarios/uas_pcap_callee.xml plays, in the same place


def media_base_port() -> int:
    """Where SIPp's media ports start (-mp): one per call upwards from it, so it is left to the kernel's ephemeral
    range, away from the peer ports of tests.ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of another process (SIPp), from /proc: shows which side of the test saturates."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def runqueue_wait_seconds() -> float:
    """Time the calling thread (the event loop's) spent runnable but waiting for a CPU, from /proc schedstat: what
    other work on the machine took from the loop."""
    try:
        return int(Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan


def involuntary_switches() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def answered(call: Call) -> bool:
    """Wait for the call's outcome: True once answered, False if it failed."""
    from sip.switch import Answered, Failed

    async for event in call.events():
        if isinstance(event, Answered):
            return True
        if isinstance(event, Failed):
            return False
    return False


@dataclass
class SippUas:
    """A SIPp process answering calls on 127.0.0.1:`port`; its statistics CSV is `stat_file`."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    stat_file: Path
    error_file: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    def last_stats(self) -> dict[str, str]:
        """The last row SIPp wrote to its statistics CSV (cumulative columns end in '(C)')."""
        try:
            rows = list(csv.reader(self.stat_file.read_text().splitlines(), delimiter=";"))
        except OSError:
            return {}
        return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}

    def errors(self) -> str:
        return self.error_file.read_text(errors="replace")[-3000:] if self.error_file.exists() else ""

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def start_sipp(scenario: Path, workdir: Path, duration_s: float, name: str = "sipp",
                     extra: Sequence[str] = ()) -> SippUas:
    """SIPp as a UAS on a free UDP port, run in `workdir` (where it finds the files its scenario plays), writing
    its statistics every second. Returns once it listens."""
    binary = shutil.which("sipp")
    if binary is None:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    port = free_port()
    stat_file, error_file = workdir / f"{name}.csv", workdir / f"{name}.err"
    process = await asyncio.create_subprocess_exec(
        binary, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media_base_port()), "-nostdin",
        "-timeout", f"{int(duration_s + 30)}s", "-max_socket", "10000", "-buff_size", str(4 * 1024 * 1024),
        "-trace_stat", "-stf", str(stat_file), "-fd", "1", "-trace_err", "-error_file", str(error_file), *extra,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        cwd=workdir)
    for _ in range(250):
        if port_in_use(port) or process.returncode is not None:
            break
        await asyncio.sleep(0.02)
    if process.returncode is not None:
        raise RuntimeError(f"SIPp ({name}) exited with {process.returncode}: {error_file}")
    return SippUas(name, process, port, stat_file, error_file)


@asynccontextmanager
async def streaming_peers(workdir: Path, budget_s: float, extra: Sequence[str] = (),
                          callee_scenario: str = "uas_rtp_stream.xml") -> AsyncIterator[tuple[SippUas, SippUas]]:
    """A SIPp "callee" UAS (`callee_scenario`) and a SIPp "agent" UAS (uas_rtp_stream.xml), both answering at once
    and sending PCMU until our BYE; killed on exit whatever happened."""
    write_stream_pcap(workdir)  # and the raw stream file beside it
    peers: list[SippUas] = []
    try:
        for name, scenario in (("callee", callee_scenario), ("agent", "uas_rtp_stream.xml")):
            peers.append(await start_sipp(SCENARIOS / scenario, workdir, budget_s, name, extra))
        yield peers[0], peers[1]
    finally:
        for peer in peers:
            await peer.stop()


async def start_switch(trunk_port: int, max_cps: float, max_channels: int, rtp_port_min: int, rtp_ports: int,
                       inactivity_timeout_s: float) -> Switch:
    """A Switch on loopback with one trunk ("load") to 127.0.0.1:`trunk_port`, no OPTIONS pings."""
    from sip.settings import RtpSettings, SipSettings, TrunkSettings
    from sip.switch import Switch

    sip = SipSettings(bind_host="127.0.0.1", port=0, transports=("udp",), stop_grace_s=5.0)
    rtp = RtpSettings(port_min=rtp_port_min, port_max=rtp_port_min + rtp_ports,
                      inactivity_timeout_s=inactivity_timeout_s)
    trunk = TrunkSettings(name="load", host="127.0.0.1", port=trunk_port, max_cps=max_cps,
                          max_channels=max_channels, options_enabled=False)
    return await Switch.start(sip, rtp, [trunk], [])


def write_stream_file(directory: Path, seconds: float = 4.0) -> Path:
    """A PCMU file for SIPp's rtp_stream (raw G.711, 160 bytes per 20 ms packet): a 440 Hz tone with some noise,
    so consecutive payloads differ and the recording holds audio."""
    from sip.media import g711

    t = np.arange(int(8000 * seconds)) / 8000
    noise = np.random.default_rng(3550).normal(0.0, 300.0, t.size)
    pcm = np.clip(6000 * np.sin(2 * np.pi * 440 * t) + noise, -32768, 32767).astype(np.int16)
    path = directory / STREAM_FILE
    path.write_bytes(g711.encode(pcm, "PCMU"))
    return path


def write_stream_pcap(directory: Path, seconds: float = 3.0) -> Path:
    """The same PCMU audio as `write_stream_file` as a capture of RTP packets, 20 ms apart, for SIPp's
    play_pcap_audio (which sends the first packet at once, then keeps the capture's spacing)."""
    payload = write_stream_file(directory, seconds).read_bytes()
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # pcap header, Ethernet frames
    for index in range(len(payload) // 160):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if index == 0 else 0, index, index * 160, 0x5EED) + \
            payload[index * 160:(index + 1) * 160]
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = bytes(12) + b"\x08\x00" + ip
        microseconds = index * 20_000
        records.append(struct.pack("<IIII", microseconds // 1_000_000, microseconds % 1_000_000, len(frame),
                                   len(frame)) + frame)
    path = directory / STREAM_PCAP
    path.write_bytes(b"".join(records))
    return path


def percentiles_ms(values_s: Sequence[float], points: Sequence[float] = (50, 95, 99, 100)) -> dict[str, float]:
    """{'p50': ..., 'max': ...} in milliseconds; NaN when there is nothing to measure."""
    array = np.asarray(values_s, dtype=np.float64)
    names = {100: "max"}
    return {names.get(p, f"p{p:g}"): (float(np.percentile(array, p)) * 1000 if array.size else math.nan)
            for p in points}


def histogram_quantile_ms(bounds_s: Sequence[float], counts: Sequence[int], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile q of a cumulative-bucket histogram: the engine's relay-delay
    counters (last slot: above the last bound, reported as inf)."""
    total = sum(counts)
    if not total:
        return math.nan
    running = 0
    for bound, count in zip(list(bounds_s) + [math.inf], counts):
        running += count
        if running >= q * total:
            return bound * 1000
    return math.inf


@dataclass
class GcPauses:
    """Counts the collector's runs and their pauses while installed (gc.callbacks)."""

    pauses_s: list[float] = field(default_factory=list)
    _started: float = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses_s.append(time.perf_counter() - self._started)

    def summary(self) -> dict:
        return {"gc_collections": len(self.pauses_s), "gc_pause_max_ms": max(self.pauses_s, default=0.0) * 1000}


class LoopStallProbe:
    """Finds what stalls the event loop: the loop bumps a heartbeat every `tick_s`; a watchdog thread that sees it
    older than `stall_s` samples every thread's innermost frames. The counts say where the time goes (a thread
    sampled inside write() while the loop is stalled points at the kernel, the loop thread sampled in Python code
    points at that code). Costs the loop one timer per tick."""

    def __init__(self, tick_s: float = 0.005, stall_s: float = 0.03) -> None:
        self.tick_s = tick_s
        self.stall_s = stall_s
        self.stalls = 0
        self.samples: Counter[str] = Counter()
        self._heartbeat = time.perf_counter()
        self._running = False
        self._loop_thread = threading.get_ident()
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._watch, name="stall-probe", daemon=True)

    def start(self) -> None:
        self._running = True
        self._loop_thread = threading.get_ident()
        self._beat()
        self._thread.start()

    def stop(self) -> dict:
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
        self._thread.join(timeout=1)
        return {"loop_stalls_over_ms": self.stall_s * 1000, "loop_stall_samples": self.stalls,
                "loop_stall_where": dict(self.samples.most_common(8))}

    def _beat(self) -> None:
        self._heartbeat = time.perf_counter()
        self._handle = asyncio.get_running_loop().call_later(self.tick_s, self._beat)

    def _watch(self) -> None:
        while self._running:
            time.sleep(self.tick_s)
            if time.perf_counter() - self._heartbeat < self.stall_s:
                continue
            self.stalls += 1
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                who = "loop" if ident == self._loop_thread else "other"
                where = " < ".join(f"{Path(f.filename).name}:{f.name}"
                                   for f in reversed(traceback.extract_stack(frame, limit=3)))
                self.samples[f"{who}: {where}"] += 1


def machine_meta() -> dict:
    return {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "note": "2-core machine shared with other work while measuring", "load_average": os.getloadavg()}


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"meta": machine_meta(), **payload}, indent=2, default=float))
    return path


def new_figure(columns: int, width: float = 11, height: float = 4):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height))


def save_figure(figure, name: str) -> Path:  # type: ignore[no-untyped-def]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
