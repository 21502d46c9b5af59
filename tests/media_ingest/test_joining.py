"""The parts of a call taken over joined into one file aligned to the call's start."""

from pathlib import Path

import numpy as np

from media_ingest.protocol.mixer import StereoMixer
from media_ingest.protocol.wav import WavWriter, read_wav
from media_ingest.recording.files import call_of, part_object, part_path, spool_path
from media_ingest.recording.joining import join_parts


def stereo(n: int, value: int) -> np.ndarray:
    return np.full((n, 2), value, np.int16)


def test_parts_land_at_their_starts_with_silence_between_and_overlap_dropped(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "one.wav", tmp_path / "two.wav"
    WavWriter(one, 100).write(stereo(150, 1))  # the dead holder's part: 0 - 1.5 s
    WavWriter(two, 100).write(stereo(100, 2))  # the survivor's: from 2.0 s
    target = tmp_path / "joined.wav"
    assert join_parts(target, [(0.0, one), (2.0, two)], 100) == 300
    _, frames = read_wav(target)
    assert (frames[:150] == 1).all() and not frames[150:200].any() and (frames[200:] == 2).all()

    # a part not reachable: silence where it was; a part starting before the last one ended
    assert join_parts(target, [(0.0, None), (1.0, one), (1.5, two)], 100) == 250
    _, frames = read_wav(target)
    assert not frames[:100].any() and (frames[100:250] == 1).all()  # overlap of two dropped


def test_a_mixer_started_midway_produces_nothing_before_and_knows_its_first_audio() -> None:
    mixer = StereoMixer(100)
    mixer.start_at(2.0, [(0.5, 1.0)])
    mixer.inbound.place(150, np.ones(20, np.int16))  # before the start: late
    mixer.outbound.place(260, np.ones(10, np.int16))
    assert mixer.inbound.late_samples == 20 and mixer.first_placed == 2.6
    frames = mixer.mix(3.0)
    assert len(frames) == 100 and mixer.position == 3.0
    assert mixer.paused_intervals == [(0.5, 1.0)]
    assert frames[60:70, 1].all() and not frames[:60].any()


def test_part_files_and_objects_are_named_apart_from_the_call(tmp_path: Path) -> None:
    ccid = "v3:abc"
    assert part_path(tmp_path, ccid, 1) == spool_path(tmp_path, ccid)
    assert part_path(tmp_path, ccid, 2).name == "v3:abc.part2.wav"
    assert call_of(part_object(ccid, 3)) == ccid and call_of("v3:x.partial") == "v3:x.partial"
