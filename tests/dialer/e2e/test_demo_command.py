"""`python -m dialer demo` as a user runs it: the summary's keys, and --carrier pointing at SIPp."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from dialer.demo.runner import SUMMARY_KEYS

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[3]
OUTCOME_KEYS = {"answered", "busy", "no_answer", "invalid", "rejected", "congestion", "failed"}


async def run_demo(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "demo", "--minutes", "0.25", "--workdir", str(tmp_path / "demo"), *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 80)
    return process.returncode, out.decode(), err.decode()


def check_summary(summary: dict) -> None:
    assert tuple(summary) == SUMMARY_KEYS
    assert set(summary["outcomes"]) == OUTCOME_KEYS
    assert summary["dials"] == sum(summary["outcomes"].values()) > 0
    assert 0 <= summary["abandoned"] <= summary["answered"] <= summary["dials"]
    assert 0.0 <= summary["occupancy"] <= 1.0


async def test_demo_json_is_one_object_with_the_documented_keys(tmp_path) -> None:
    code, out, err = await run_demo(tmp_path, "--json", "--agents", "3", "--seed", "7")
    assert code == 0, err
    summary = json.loads(out)  # stdout holds the one object and nothing else
    check_summary(summary)
    assert summary["gate_refusals"]["dnc"] == 1  # the lead the demo puts on the do-not-call list
    assert summary["gate_refusals"].get("outside_calling_window", 0) > 0  # 8 regions never all in 08:00-21:00
    assert (tmp_path / "demo" / "dialer.db").exists()


async def test_demo_text_output_and_external_carrier(tmp_path, sipp_carrier) -> None:
    carrier = await sipp_carrier(ring_ms=500, talk_ms=3000, timeout_s=60)
    code, out, err = await run_demo(tmp_path, "--carrier", carrier.address, "--agents", "2")
    assert code == 0, err
    assert "external carrier at " + carrier.address in out
    assert "line 7: number:" in out  # the bad row of the demo lead list, reported by line
    progress = [line for line in out.splitlines() if line.strip().endswith(tuple("0123456789")) and "agents ready" in line]
    assert len(progress) >= 8  # one line per second
    assert "Summary" in out and "gate refusals" in out
    dials = int(next(line for line in out.splitlines() if line.strip().startswith("dials")).split()[-1])
    assert dials == len(carrier.invites()) > 0, (out, carrier.errors())  # every dial reached the external peer
