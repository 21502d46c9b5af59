"""Streaming 16-bit PCM WAV files that stay valid while they grow and after a crash.

The writer holds no file handle between writes (so a thousand recordings do not hold a thousand
descriptors): each :meth:`WavWriter.write` opens the file, appends, rewrites the two size fields
of the header and closes it. A process that dies between the append and the header update
leaves a file whose header undercounts; :func:`repair_wav` sets the sizes from the file length.
"""

import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER_SIZE = 44
_MAX_SIZE = 0xFFFFFFFF
_RIFF_SIZE_AT = 4
_DATA_SIZE_AT = 40


def _header(sample_rate: int, channels: int, data_size: int) -> bytes:
    block = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(36 + data_size, _MAX_SIZE),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        16,
        b"data",
        min(data_size, _MAX_SIZE),
    )


class WavWriter:
    """Appends int16 frames (shape ``(n, channels)``; left = inbound, right = outbound)."""

    def __init__(
        self, path: Path, sample_rate: int, channels: int = 2, *, append: bool = False
    ) -> None:
        """``append``: go on writing a file a writer left (repaired first, ``repair_wav``);
        ValueError when its format differs."""
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        if append:
            header = read_header(path)
            if (header.sample_rate, header.channels) != (sample_rate, channels):
                raise ValueError(
                    f"{path} holds {header.channels} channels at {header.sample_rate} Hz, "
                    f"not {channels} at {sample_rate}"
                )
            self.frames = header.data_size // header.block
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_header(sample_rate, channels, 0))

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def write(self, frames: np.ndarray) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"expected shape (n, {self.channels}), got {frames.shape}")
        if not len(frames):
            return
        data = np.ascontiguousarray(frames, "<i2").tobytes()
        fd = os.open(self.path, os.O_WRONLY)  # not O_APPEND: Linux pwrite would append too
        try:
            os.pwrite(fd, data, HEADER_SIZE + self.frames * 2 * self.channels)
            self.frames += len(frames)
            size = self.frames * 2 * self.channels
            os.pwrite(fd, struct.pack("<I", min(36 + size, _MAX_SIZE)), _RIFF_SIZE_AT)
            os.pwrite(fd, struct.pack("<I", min(size, _MAX_SIZE)), _DATA_SIZE_AT)
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class WavHeader:
    """What the 44-byte header of a :class:`WavWriter` file says."""

    sample_rate: int
    channels: int
    block: int  # bytes per frame
    data_size: int  # bytes of audio the header counts (the writer appends before it updates it)

    @property
    def file_size(self) -> int:
        """Header plus the audio it counts: a valid WAV even while the file grows."""
        return HEADER_SIZE + self.data_size


def parse_header(header: bytes) -> WavHeader:
    """The one reader of a WavWriter header; ValueError when ``header`` is not one (or is short)."""
    if (
        len(header) < HEADER_SIZE
        or header[:4] != b"RIFF"
        or header[8:12] != b"WAVE"
        or header[36:40] != b"data"
    ):
        raise ValueError("not a WAV file written by voicetap")
    channels, sample_rate = struct.unpack_from("<HI", header, 22)
    block = struct.unpack_from("<H", header, 32)[0]
    data_size = struct.unpack_from("<I", header, _DATA_SIZE_AT)[0]
    return WavHeader(sample_rate, channels, block, data_size)


def read_header(path: Path) -> WavHeader:
    """The header of the WAV file at ``path`` (OSError if unreadable, ValueError if not a WAV)."""
    with open(path, "rb") as file:
        return parse_header(file.read(HEADER_SIZE))


def repair_wav(path: Path) -> int:
    """Fix the RIFF and data sizes of a WAV file written by :class:`WavWriter` from its length
    (dropping a torn last frame); returns the number of frames."""
    with open(path, "r+b") as file:
        try:
            block = parse_header(file.read(HEADER_SIZE)).block
        except ValueError:
            raise ValueError(f"{path} is not a WAV file written by voicetap") from None
        file.seek(0, os.SEEK_END)
        size = (file.tell() - HEADER_SIZE) // block * block
        file.truncate(HEADER_SIZE + size)
        file.seek(_RIFF_SIZE_AT)
        file.write(struct.pack("<I", min(36 + size, _MAX_SIZE)))
        file.seek(_DATA_SIZE_AT)
        file.write(struct.pack("<I", min(size, _MAX_SIZE)))
    return size // block


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Sample rate and int16 frames of shape ``(n, channels)``, trusting the header's sizes."""
    with wave.open(str(path), "rb") as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        data = reader.readframes(reader.getnframes())
    return rate, np.frombuffer(data, "<i2").reshape(-1, channels)
