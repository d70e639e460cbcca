"""The SIPp-driven benchmarks run tiny (2 calls, 2 s) so their code and scenarios cannot rot: every call set up
with zero failures, RTP relayed both ways between real SIPp peers, recordings written. Figures are not asserted:
benchmarks print them."""

from __future__ import annotations

import asyncio
import math
import struct
import time
import wave
from pathlib import Path

from benchmarks import sip_answer_to_bridge, sip_bridged
from benchmarks._sipp import LoopStallProbe, histogram_quantile_ms, write_stream_pcap
from tests.conftest import require_binary


async def test_bridged_benchmark_relays_both_ways_and_records(tmp_path: Path) -> None:
    require_binary("sipp")
    result = await sip_bridged.run(calls=2, seconds=2, setup_rate=20, wall_sample=0, workdir=tmp_path)
    assert result["calls_failed"] == 0, result["failures"]
    assert result["calls_bridged"] == 2
    assert max(result["bridged_held_per_second"]) == 2  # both calls relaying at once
    # 2 calls x 2 directions x 50 packets/s x 2 s; half of it even if a busy machine stalls us at the window's end
    assert result["packets_relayed"] >= 0.5 * 2 * 2 * 50 * 2
    assert result["relay_loss_rate"] < 0.01  # what SIPp sent (RFC 3550 accounting) was relayed
    assert sum(result["relay_processing_histogram"]["counts"]) == result["packets_relayed"]
    assert result["calls_ended_cleanly"] == 4
    assert result["sipp_failed_calls"] == ["0", "0"]
    assert result["recordings_written"] == 2
    for path in (tmp_path / "recordings").glob("*.wav"):
        with wave.open(str(path)) as wav:
            assert wav.getnchannels() == 2
            assert wav.getnframes() >= 2 * 8000  # at least the held window, both channels


async def test_answer_to_bridge_benchmark_measures_every_call(tmp_path: Path) -> None:
    require_binary("sipp")
    result = await sip_answer_to_bridge.run(calls=4, rate=8, hold_s=0.3, agents=4, workdir=tmp_path)
    assert result["calls_failed"] == 0, result["failures"]
    assert result["calls_measured"] == 4
    delays = result["answer_to_first_relayed_ms"]
    assert 0 < delays["p50"] <= delays["max"] < 1000  # RTP reached the agent after the answer, for every call
    assert result["sipp_callee_failed_calls"] in ("0", None)
    assert len(list(tmp_path.glob("call-*.wav"))) == 4


def test_histogram_quantile_reads_bucket_upper_bounds() -> None:
    bounds = (0.001, 0.002, 0.005)
    assert histogram_quantile_ms(bounds, [50, 49, 1, 0], 0.5) == 1.0
    assert histogram_quantile_ms(bounds, [50, 49, 1, 0], 0.99) == 2.0
    assert histogram_quantile_ms(bounds, [50, 49, 0, 1], 1.0) == math.inf
    assert math.isnan(histogram_quantile_ms(bounds, [0, 0, 0, 0], 0.5))


def test_stream_pcap_holds_20ms_pcmu_packets(tmp_path: Path) -> None:
    data = write_stream_pcap(tmp_path, seconds=1.0).read_bytes()
    assert struct.unpack_from("<IHHiIII", data)[0] == 0xA1B2C3D4 and struct.unpack_from("<I", data, 20)[0] == 1
    offset, times, sequence = 24, [], []
    while offset < len(data):
        seconds, microseconds, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        assert struct.unpack_from("!H", frame, 38)[0] == length - 34  # UDP length: header + RTP
        assert frame[42] == 0x80 and frame[43] & 0x7F == 0 and length - 54 == 160  # RTP v2, PCMU, 20 ms
        times.append(seconds + microseconds / 1e6)
        sequence.append(struct.unpack_from("!H", frame, 44)[0])
    assert len(times) == 50 and sequence == list(range(50))
    assert all(math.isclose(b - a, 0.02, abs_tol=1e-9) for a, b in zip(times, times[1:]))


async def test_stall_probe_points_at_code_that_blocks_the_loop() -> None:
    probe = LoopStallProbe(tick_s=0.005, stall_s=0.03)
    probe.start()
    await asyncio.sleep(0.02)
    time.sleep(0.12)  # noqa: ASYNC101 - the stall under test
    await asyncio.sleep(0.02)
    found = probe.stop()
    assert found["loop_stall_samples"] >= 1
    assert any(where.startswith("loop: ") and "test_stall_probe_points_at_code_that_blocks_the_loop" in where
               for where in found["loop_stall_where"])
