from pathlib import Path

import numpy as np
import pytest

from media_ingest.protocol.wav import HEADER_SIZE, WavWriter, read_wav, repair_wav


def stereo(n: int, start: int = 0) -> np.ndarray:
    left = np.arange(start, start + n, dtype=np.int16)
    return np.stack([left, -left], axis=1)


def test_file_is_valid_after_creation_and_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "calls" / "c.wav"
    writer = WavWriter(path, 8000)
    assert read_wav(path)[1].shape == (0, 2)
    writer.write(stereo(800))
    writer.write(stereo(0))
    writer.write(stereo(400, 800))
    rate, frames = read_wav(path)
    assert rate == 8000 and np.array_equal(frames, stereo(1200))
    assert writer.frames == 1200 and writer.duration == pytest.approx(0.15)
    assert frames[5].tolist() == [5, -5]  # left = inbound, right = outbound


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        WavWriter(tmp_path / "x.wav", 8000).write(np.zeros(10, np.int16))


def test_repair_after_a_crash_between_append_and_header_update(tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    WavWriter(path, 16000).write(stereo(100))
    with open(path, "ab") as file:  # appended, header not updated, last frame torn
        file.write(stereo(50, 100).astype("<i2").tobytes() + b"\x01\x02")
    assert len(read_wav(path)[1]) == 100
    assert repair_wav(path) == 150
    assert path.stat().st_size == HEADER_SIZE + 150 * 4
    assert np.array_equal(read_wav(path)[1], stereo(150))


def test_repair_refuses_what_is_not_our_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file at all, not even close to forty-four bytes")
    with pytest.raises(ValueError, match="not a WAV"):
        repair_wav(path)


def test_a_repaired_file_is_written_on_where_it_ends(tmp_path: Path) -> None:
    """Restart in place: the writer of the next process appends after what the last one left."""
    path = tmp_path / "c.wav"
    WavWriter(path, 8000).write(stereo(100))
    with open(path, "ab") as file:  # killed mid-append: a torn frame
        file.write(b"\x07")
    assert repair_wav(path) == 100
    writer = WavWriter(path, 8000, append=True)
    assert writer.frames == 100
    writer.write(stereo(50, 100))
    assert np.array_equal(read_wav(path)[1], stereo(150))
    with pytest.raises(ValueError, match="2 channels at 8000 Hz"):
        WavWriter(path, 16000, append=True)
