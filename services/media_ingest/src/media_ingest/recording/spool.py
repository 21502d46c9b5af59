"""Finished recordings waiting for the store: each one a WAV and its ``<name>.event`` (the
completed event as it will be published, less where it is stored), both in the spool directory.

The event file is written (temporary file renamed over it) before the sidecar goes, and removed
before the WAV, so a process killed at any point leaves a recording that is either still an
orphan (sidecar), or spooled (event file), or a stray WAV with neither, which is removed.
"""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from media_ingest.recording.files import event_path, sidecar_path, spool_dir, temporary_path
from voicetap_sdk.codec import dumps, loads
from voicetap_sdk.media_events import RecordingCompleted

log = logging.getLogger("voicetap.media_ingest.spool")

STRAY_SECONDS = 60.0


@dataclass(frozen=True)
class Spooled:
    event: RecordingCompleted  # as it will be published, less storage_url, bytes, sha256
    instance: str  # the instance that spooled it
    wav: Path
    spooled_at: float  # wall-clock seconds
    joined: bool = False  # a call taken over: its parts are joined in ``wav`` (or beside it)

    @property
    def call_control_id(self) -> str:
        return self.event.call_control_id

    @property
    def event_file(self) -> Path:
        return event_path(self.wav)


class Spool:
    def __init__(self, data_dir: Path) -> None:
        self.directory = spool_dir(data_dir)

    def add(
        self, event: RecordingCompleted, wav: Path, instance: str, *, joined: bool = False
    ) -> None:
        """Spool a finished recording (its sidecar, if any, may go once this returns)."""
        target = event_path(wav)
        temporary = temporary_path(target)
        body = {
            "instance": instance,
            "spooled_at": time.time(),
            "event": event.model_dump(mode="json"),
            "joined": joined,
        }
        temporary.write_bytes(dumps(body))
        temporary.replace(target)

    def pending(self) -> list[Spooled]:
        """Every spooled recording, oldest first; stray WAVs (neither sidecar nor event) removed."""
        found: list[Spooled] = []
        if not self.directory.is_dir():
            return found
        for entry in self.directory.glob("*.event"):
            wav = entry.with_suffix(".wav")
            try:
                body = loads(entry.read_bytes())
                found.append(
                    Spooled(
                        RecordingCompleted.model_validate(body["event"]),
                        str(body["instance"]),
                        wav,
                        float(body["spooled_at"]),
                        bool(body.get("joined", False)),
                    )
                )
            except FileNotFoundError:  # uploaded (or erased) meanwhile
                continue
            except (OSError, ValueError, KeyError, TypeError):
                log.error("unreadable spooled recording event", extra={"path": str(entry)})
        for wav in self.directory.glob("*.wav"):
            if not event_path(wav).exists() and not sidecar_path(wav).exists():
                self._remove_stray(wav)
        return sorted(found, key=lambda item: item.spooled_at)

    def _remove_stray(self, wav: Path) -> None:
        """A live call's WAV has its sidecar from its first moment (and is rewritten every tick):
        one without, not written for a while, was uploaded or erased."""
        try:
            if time.time() - wav.stat().st_mtime > STRAY_SECONDS:
                wav.unlink()
                log.info("removed a spooled WAV already stored", extra={"path": str(wav)})
        except OSError:
            pass

    def remove(self, item: Spooled) -> None:
        """Done with a spooled recording: the event file first, then the WAV."""
        item.event_file.unlink(missing_ok=True)
        item.wav.unlink(missing_ok=True)

    def erase(self, wav: Path) -> None:
        """Forget a recording (erasure): an upload under way then deletes what it stored."""
        for path in (event_path(wav), sidecar_path(wav), wav):
            path.unlink(missing_ok=True)

    def stats(self) -> tuple[int, float]:
        """How many recordings are spooled, and the oldest one's age in seconds (0 when none)."""
        ages = []
        now = time.time()
        if self.directory.is_dir():
            for entry in self.directory.glob("*.event"):
                try:
                    ages.append(now - os.stat(entry).st_mtime)
                except OSError:
                    continue
        return len(ages), max(ages, default=0.0)
