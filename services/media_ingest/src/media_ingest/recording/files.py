"""Where a call's recording and its sidecar live on disk, and the URL path that serves it."""

import re
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.:=-]")


def file_stem(call_control_id: str) -> str:
    """A file name for a call id: Telnyx ids are URL-safe, anything else is escaped (never a path)."""
    stem = _SAFE.sub(lambda m: f"%{ord(m.group()):02X}", call_control_id)
    return stem if not stem.startswith(".") else "%2E" + stem[1:]


def recordings_dir(data_dir: Path) -> Path:
    return data_dir / "recordings"


def recording_path(data_dir: Path, call_control_id: str) -> Path:
    return recordings_dir(data_dir) / f"{file_stem(call_control_id)}.wav"


def sidecar_path(wav: Path) -> Path:
    return wav.with_suffix(".json")


def temporary_path(sidecar: Path) -> Path:
    return sidecar.with_suffix(".json.tmp")


def url_path(call_control_id: str) -> str:
    return f"/calls/{call_control_id}/recording.wav"
