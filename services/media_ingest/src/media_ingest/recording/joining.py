"""A call's parts (one per instance that held it, after takeovers) joined into one WAV aligned to
the call's start: each part at its own start, silence where no part covers the call (the gaps,
and a part that could not be reached), a part's frames that overlap the previous part's dropped."""

from pathlib import Path

import numpy as np

from media_ingest.protocol.wav import HEADER_SIZE, WavWriter, read_header

_CHUNK_FRAMES = 1 << 19  # about a minute of stereo 8 kHz audio per write


def join_parts(target: Path, parts: list[tuple[float, Path | None]], sample_rate: int) -> int:
    """Write ``parts`` (each its start in seconds and its file, None when unreachable) into
    ``target`` in order; returns the frames written."""
    writer = WavWriter(target, sample_rate)
    for start, source in parts:
        at = round(start * sample_rate)
        while writer.frames < at:
            writer.write(np.zeros((min(at - writer.frames, _CHUNK_FRAMES), 2), np.int16))
        if source is None:
            continue
        header = read_header(source)
        if header.sample_rate != sample_rate or header.channels != 2:
            raise ValueError(f"{source} is not stereo at {sample_rate} Hz")
        count = header.data_size // header.block
        if not count:
            continue
        data = np.memmap(source, "<i2", "r", offset=HEADER_SIZE, shape=(count, 2))
        for first in range(max(writer.frames - at, 0), count, _CHUNK_FRAMES):
            writer.write(np.asarray(data[first : first + _CHUNK_FRAMES]))
    return writer.frames
