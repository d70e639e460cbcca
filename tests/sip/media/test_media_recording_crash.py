"""A recording process killed with SIGKILL leaves a WAV that opens and holds all but the last second."""

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from media_peers import dominant_frequency

REPO = Path(__file__).resolve().parents[3]

CHILD = r"""
import asyncio, os, signal, socket, sys, time
import numpy as np
import pytest
from sip.media import g711
from sip.media.engine import MediaEngine
from sip.media.rtp import build_rtp
from sip.media.sdp import SdpNegotiator
from sip.settings import RtpSettings

async def main(path, seconds):
    engine = MediaEngine(RtpSettings(port_min=40000, port_max=49999))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    callee = await engine.allocate_leg("callee")
    agent = await engine.allocate_leg("agent")
    callee.answer(SdpNegotiator("127.0.0.1", sender.getsockname()[1], ("PCMU",)).make_offer().serialize())
    agent.answer(SdpNegotiator("127.0.0.1", 9, ("PCMU",)).make_offer().serialize())
    engine.bridge(callee, agent, path)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(int(seconds / 0.02)):
        t = (160 * i + np.arange(160)) / 8000
        payload = g711.encode((np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16), "PCMU")
        sender.sendto(build_rtp(0, i, 160 * i, 77, payload), callee.local_address)
        await asyncio.sleep(max(0, start + (i + 1) * 0.02 - loop.time()))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@pytest.mark.slow
def test_sigkill_loses_at_most_a_second(tmp_path):
    path = tmp_path / "crash.wav"
    seconds = 2.5
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), str(seconds)], cwd=REPO, timeout=30)
    assert result.returncode == -9
    with wave.open(str(path)) as wav:
        frames = wav.getnframes()
        audio = np.frombuffer(wav.readframes(frames), "<i2").reshape(-1, 2)
    assert frames >= (seconds - 1.0) * 8000
    assert audio.shape[0] == frames  # the header never claims more than is on disk
    assert abs(dominant_frequency(audio[:, 0]) - 440) < 10
