import numpy as np

from media_ingest.protocol.mixer import LegTimeline, StereoMixer


def ramp(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def test_gaps_are_silence_and_overlaps_keep_the_first_audio() -> None:
    leg = LegTimeline(snap=2)
    leg.place(0, ramp(4))
    leg.place(10, ramp(3, 100))  # gap of 6
    leg.place(10, ramp(4, 200))  # overlaps 3 samples (more than snap): its head is cut
    assert leg.end == 14
    assert leg.take(16).tolist() == [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 100, 101, 102, 203, 0, 0]


def test_tiny_gaps_and_overlaps_are_snapped_shut() -> None:
    leg = LegTimeline(snap=2)
    leg.place(0, ramp(4))
    leg.place(6, ramp(2, 10))  # 2-sample gap: joined
    leg.place(5, ramp(2, 20))  # 1-sample overlap: appended
    assert leg.take(8).tolist() == [1, 2, 3, 4, 10, 11, 20, 21]


def test_audio_behind_the_read_position_is_late() -> None:
    leg = LegTimeline(snap=0)
    assert leg.take(5).tolist() == [0] * 5
    leg.place(3, ramp(4))
    assert leg.late_samples == 2
    assert leg.take(3).tolist() == [3, 4, 0]


def test_buffer_grows_and_shifts() -> None:
    leg = LegTimeline()
    pcm = ramp(30000, -15000)
    leg.place(0, pcm)
    leg.place(30000, pcm)
    assert np.array_equal(leg.take(40000), np.concatenate([pcm, pcm[:10000]]))
    assert np.array_equal(leg.take(20000), pcm[10000:])


def test_mixer_interleaves_and_a_silent_leg_is_silence() -> None:
    mixer = StereoMixer(8000)
    mixer.inbound.place(0, np.full(800, 7, np.int16))
    frames = mixer.mix(0.05)
    assert frames.shape == (400, 2) and set(frames[:, 0]) == {7} and set(frames[:, 1]) == {0}
    assert mixer.mix(0.05).shape == (0, 2)
    assert mixer.position == 0.05


def test_pauses_are_silenced_and_reported() -> None:
    mixer = StereoMixer(1000)
    mixer.inbound.place(0, np.full(1000, 5, np.int16))
    mixer.outbound.place(0, np.full(1000, 6, np.int16))
    mixer.pause(0.1)
    first = mixer.mix(0.15)
    mixer.resume(0.2)
    mixer.pause(0.9)
    rest = mixer.finish(0.5)  # audio goes on to 1.0 s: the file does too
    frames = np.concatenate([first, rest])
    assert len(frames) == 1000
    assert not frames[100:200].any() and not frames[900:].any()
    assert frames[:100].all() and frames[200:900].all()
    assert mixer.paused_intervals == [(0.1, 0.2), (0.9, 1.0)]


def test_finish_pads_a_call_without_media_to_its_length() -> None:
    mixer = StereoMixer(8000)
    frames = mixer.finish(2.5)
    assert frames.shape == (20000, 2) and not frames.any()
