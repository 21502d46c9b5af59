import numpy as np
import pytest

from media_ingest.protocol.analytics import CallAnalytics

RATE = 8000


def tone(seconds: float, dbfs: float) -> np.ndarray:
    t = np.arange(round(RATE * seconds)) / RATE
    amplitude = 32768 * np.sqrt(2) * 10 ** (dbfs / 20)  # a sine's RMS is amplitude / sqrt(2)
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(RATE * seconds), np.int16)


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=1)


def test_levels_and_talk_time_of_one_window() -> None:
    analytics = CallAnalytics(RATE)
    (window,) = analytics.feed(stereo(tone(1.0, -20), silence(1.0)))
    assert (window["start"], window["end"], window["overtalk"]) == (0.0, 1.0, 0.0)
    assert window["inbound"]["rms_dbfs"] == pytest.approx(-20, abs=0.2)
    assert window["inbound"]["peak_dbfs"] == pytest.approx(-17, abs=0.2)
    assert (window["inbound"]["talk"], window["inbound"]["silence"]) == (1.0, 0.0)
    assert window["outbound"]["rms_dbfs"] == -120.0
    assert (window["outbound"]["talk"], window["outbound"]["silence"]) == (0.0, 1.0)


def test_hangover_holds_speech_after_the_last_loud_frame() -> None:
    analytics = CallAnalytics(RATE, hangover=0.2, threshold_dbfs=-40)
    left = np.concatenate([tone(0.1, -20), silence(0.9)])
    analytics.feed(stereo(left, silence(1.0)))
    assert analytics.totals()["inbound"] == {"talk": 0.3, "silence": 0.7}
    quiet = CallAnalytics(RATE, threshold_dbfs=-40)
    quiet.feed(stereo(tone(1.0, -50), silence(1.0)))  # below threshold: not speech
    assert quiet.totals()["inbound"]["talk"] == 0.0


def test_overtalk_and_chunking_does_not_change_results() -> None:
    left = np.concatenate([tone(1.2, -20), silence(1.0)])
    right = np.concatenate([silence(0.8), tone(1.0, -25), silence(0.4)])
    block = stereo(left, right)
    whole = CallAnalytics(RATE, hangover=0.0)
    windows = whole.feed(block)
    chunked = CallAnalytics(RATE, hangover=0.0)
    pieces = [chunked.feed(block[i : i + 777]) for i in range(0, len(block), 777)]
    assert [w for piece in pieces for w in piece] == windows and len(windows) == 2
    assert whole.totals() == chunked.totals()
    assert whole.totals()["overtalk"] == pytest.approx(0.4)
    assert [w["overtalk"] for w in windows] == pytest.approx([0.2, 0.2])
    last = whole.flush()
    assert last is not None and (last["start"], last["end"]) == (2.0, 2.2)
    assert whole.flush() is None
