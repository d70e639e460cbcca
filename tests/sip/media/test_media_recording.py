import wave

import numpy as np

from sip.media import g711
from sip.media.recording import CallRecording, RecordingWriter
from sip.media.rtp import build_rtp


def frame(value: int, codec: str = "PCMU") -> bytes:
    return g711.encode(np.full(160, value, dtype=np.int16), codec)


async def test_gaps_are_silence_channels_align_and_late_audio_is_counted(tmp_path):
    writer = RecordingWriter()
    path = tmp_path / "unit.wav"
    recording = CallRecording(path, writer, flush_interval_s=3600)
    t0 = recording._start
    for i in (0, 1, 3):  # packet 2 lost
        recording.feed(0, build_rtp(0, i, 1000 + 160 * i, 7, frame(1000)), 12, "PCMU", 1000 + 160 * i, 7, t0)
    # the agent starts talking 40 ms later, in A-law, with its own numbering
    for i in range(2):
        packet = build_rtp(8, i, 90 + 160 * i, 9, frame(-2000, "PCMA"))
        recording.feed(1, packet, 12, "PCMA", 90 + 160 * i, 9, t0 + 0.040)
    recording._write(640)
    late = build_rtp(0, 9, 1000 - 160, 7, frame(1000))  # belongs before the start of what is written
    recording.feed(0, late, 12, "PCMU", 1000 - 160, 7, t0 + 0.1)
    assert recording.late_samples == 160
    await recording.close()
    await writer.shutdown()
    with wave.open(str(path)) as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert audio.shape == (640, 2)
    callee, agent = audio[:, 0], audio[:, 1]
    decoded_1000 = g711.decode(frame(1000), "PCMU")[0]
    assert np.all(callee[:320] == decoded_1000) and np.all(callee[480:] == decoded_1000)
    assert np.all(callee[320:480] == 0)  # the lost packet is silence
    alaw_silence = g711.decode(bytes([g711.SILENCE["PCMA"]]), "PCMA")[0]  # A-law has no zero: +-8
    assert np.all(agent[:320] == alaw_silence)
    assert np.all(agent[320:] == g711.decode(frame(-2000, "PCMA"), "PCMA")[0])
