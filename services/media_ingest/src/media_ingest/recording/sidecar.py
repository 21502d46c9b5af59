"""The sidecar ``<name>.json`` beside a recording while it is written: crash-safe writes, and the
orphans (sidecars still there) an instance that died mid-call left.

It names the instance writing the WAV and keeps what the completed event would say that the WAV
cannot: codec, per-leg statistics, paused intervals, media kinds. A sidecar left behind means the
instance died mid-call: :func:`find_orphans` lists them for the recovery (``media_ingest.recovery``),
which repairs the WAV and hands it to the uploads with the event of
:func:`~media_ingest.recording.recovered.recovered_recording`.
"""

import json
import logging
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media_ingest.recording.files import event_path, sidecar_path, spool_dir, temporary_path
from voicetap_sdk.codec import dumps

log = logging.getLogger("voicetap.media_ingest.sidecar")


class SidecarWriter:
    """Rewrites one recording's sidecar whole, never shorter than the last write (spaces pad it),
    so no tail of an older, longer version is left behind."""

    def __init__(self, wav: Path) -> None:
        self.path = sidecar_path(wav)
        self._size = 0  # bytes of the last write (JSON padded with spaces)

    @property
    def size(self) -> int:
        return self._size

    def write(self, facts: dict[str, Any]) -> None:
        """About 17 µs; a temporary file renamed over it costs 70-180 µs on ext4, whose rename
        starts writing the new file's blocks back."""
        data = dumps(facts)
        fresh = not self._size
        data += b" " * (self._size - len(data))
        self._size = len(data)
        write_whole(self.path, data, fresh=fresh)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_whole(path: Path, data: bytes, *, fresh: bool) -> None:
    """Write ``data`` over the start of ``path`` so that a process killed meanwhile leaves the old
    content or the new, never a mix (no fsync: it has to survive the process, not the machine).

    Up to a page, one ``pwrite`` at offset 0 does: Linux copies a buffered write page by page and
    gives up on a fatal signal only between pages. Beyond (a call paused hundreds of times), a
    temporary file is renamed over it. ``fresh`` truncates whatever an earlier life left there."""
    if len(data) > mmap.PAGESIZE:
        temporary = temporary_path(path)
        temporary.write_bytes(data)
        temporary.replace(path)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Orphan:
    call_control_id: str
    instance: str
    wav: Path
    sidecar: Path
    facts: dict[str, Any] = field(default_factory=dict)  # the sidecar as last saved

    def remove_sidecar(self) -> None:
        self.sidecar.unlink(missing_ok=True)
        temporary_path(self.sidecar).unlink(missing_ok=True)  # a write the crash interrupted


def find_orphans(data_dir: Path) -> list[Orphan]:
    """Recordings whose sidecar is still there: written by an instance that may have died."""
    found: list[Orphan] = []
    directory = spool_dir(data_dir)
    if not directory.is_dir():
        return found
    for sidecar in directory.glob("*.json"):
        if event_path(sidecar).exists():  # finished: killed before the sidecar's removal
            sidecar.unlink(missing_ok=True)
            continue
        try:
            meta = json.loads(sidecar.read_text())
            found.append(
                Orphan(
                    str(meta["call_control_id"]),
                    str(meta["instance"]),
                    sidecar.with_suffix(".wav"),
                    sidecar,
                    meta,
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable recording sidecar", extra={"path": str(sidecar)})
    return found
