"""Deleting a call's recording: the one place that knows where recordings are kept.

Today a recording is a WAV (and, while it is written, its sidecar) under this instance's data
directory; object storage (``VOICETAP_RECORDINGS_URL``) would add its branch here, behind the same
two functions.
"""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from media_ingest.recording.files import (
    recording_path,
    recordings_dir,
    sidecar_path,
    temporary_path,
)


def delete_recording(data_dir: Path, call_control_id: str) -> int:
    """Delete the call's recording and its sidecar; 1 when there was a recording, else 0."""
    wav = recording_path(data_dir, call_control_id)
    sidecar = sidecar_path(wav)
    temporary_path(sidecar).unlink(missing_ok=True)
    sidecar.unlink(missing_ok=True)
    try:
        wav.unlink()
    except FileNotFoundError:
        return 0
    return 1


def recorded_calls(data_dir: Path) -> Iterator[str]:
    """The call ids of the recordings kept here (file names are escaped ids: ``files.file_stem``)."""
    directory = recordings_dir(data_dir)
    if directory.is_dir():
        for wav in directory.glob("*.wav"):
            yield unquote(wav.stem)
