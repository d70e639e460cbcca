import wave
from pathlib import Path

import numpy as np
import pytest

from sip.media import g711
from sip.media.announcement import Announcement, AnnouncementError
from sip.media.dtmf import DtmfReceiver, event_of, event_payloads
from sip.media.make_default_announcement import announcement as default_pcm

REPO = Path(__file__).resolve().parents[3]


def feed_all(receiver, packets, ts):
    for payload, _ in packets:
        receiver.feed(payload, ts)


def test_end_retransmissions_are_reported_once():
    got = []
    receiver = DtmfReceiver(got.append)
    packets = event_payloads("5", 200)
    assert len(packets) == 10 + 2  # 9 updates + end three times
    assert packets[0][1] and not any(first for _, first in packets[1:])
    feed_all(receiver, packets, 1000)
    feed_all(receiver, packets[-3:], 1000)  # late duplicates of the end packet
    assert [(d.digit, d.duration_ms, d.complete) for d in got] == [("5", 200, True)]


def test_lost_end_is_reported_when_the_next_event_starts():
    got = []
    receiver = DtmfReceiver(got.append)
    feed_all(receiver, event_payloads("A", 100)[:3], 1000)  # end packets lost
    feed_all(receiver, event_payloads("#", 60), 2000)
    assert [(d.digit, d.complete) for d in got] == [("A", False), ("#", True)]
    assert got[0].duration_ms == 60


def test_same_digit_twice_is_two_events():
    got = []
    receiver = DtmfReceiver(got.append)
    feed_all(receiver, event_payloads("1", 60), 1000)
    feed_all(receiver, event_payloads("1", 60), 3000)
    assert [d.digit for d in got] == ["1", "1"]


def test_malformed_and_bad_digits():
    receiver = DtmfReceiver(lambda d: None)
    receiver.feed(b"\x01", 0)
    receiver.feed(b"\x63\x80\x00\xa0", 0)  # event 99 is no DTMF
    assert receiver.malformed == 2
    with pytest.raises(ValueError, match="not a DTMF digit"):
        event_of("x")


def write_wav(path, pcm, rate, channels=1, width=2):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def test_load_resamples_and_downmixes_once(tmp_path):
    rate = 44100
    t = np.arange(rate // 2) / rate
    mono = (np.sin(2 * np.pi * 500 * t) * 8000).astype("<i2")
    path = tmp_path / "stereo44k.wav"
    write_wav(path, np.repeat(mono, 2), rate, channels=2)
    clip = Announcement.load(path, "PCMA")
    assert clip.codec == "PCMA" and len(clip.frames) == 25 and all(len(f) == 160 for f in clip.frames)
    pcm = g711.decode(b"".join(clip.frames), "PCMA").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.fft.rfftfreq(pcm.size, 1 / 8000)[np.argmax(spectrum)] - 500) < 20
    assert clip.for_codec("PCMU") is clip.for_codec("PCMU")  # converted once, then cached
    assert clip.duration_s == pytest.approx(0.5)


def test_bad_wav_files_are_refused_with_the_path(tmp_path):
    eight_bit = tmp_path / "8bit.wav"
    write_wav(eight_bit, np.zeros(100, np.uint8), 8000, width=1)
    with pytest.raises(AnnouncementError, match="8bit.wav: 8-bit samples"):
        Announcement.load(eight_bit)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav")
    with pytest.raises(AnnouncementError, match="junk.wav: cannot read as WAV"):
        Announcement.load(junk)


def test_shipped_default_announcement_matches_its_generator():
    path = REPO / "config" / "announcements" / "abandoned.wav"
    assert path.stat().st_size < 100_000
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 8000, 2)
        shipped = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.array_equal(shipped, default_pcm())
    assert Announcement.load(path).duration_s == pytest.approx(2.5, abs=0.02)


def test_event_whose_end_packets_are_all_lost_expires():
    got = []
    receiver = DtmfReceiver(got.append, end_timeout_s=0.5)
    for payload, _ in event_payloads("3", 100)[:4]:
        receiver.feed(payload, 1000, now=10.0)
    receiver.expire(10.4)
    assert got == []
    receiver.expire(10.6)
    assert [(d.digit, d.duration_ms, d.complete) for d in got] == [("3", 80, False)]
    receiver.expire(11.5)
    feed_all(receiver, event_payloads("3", 100)[-3:], 1000)  # late end packets of the reported event
    assert len(got) == 1
