"""The completed event of a recording repaired after its instance died, from its sidecar's facts."""

import logging
from typing import Any

from media_ingest.recording.files import url_path
from media_ingest.recording.sidecar import Orphan
from voicetap_sdk.media_events import RecordingCompleted

log = logging.getLogger("voicetap.media_ingest.recovered")


def recovered_recording(
    orphan: Orphan, *, instance: str, frames: int, sample_rate: int
) -> RecordingCompleted:
    """The completed event of a repaired recording, with the facts its sidecar last saved (pauses
    cut at the repaired file's end; an open one lasts until it)."""
    duration = round(frames / sample_rate, 3)
    known: dict[str, Any] = dict(
        id=f"recording:{orphan.call_control_id}",
        call_control_id=orphan.call_control_id,
        path=str(orphan.wav.resolve()),
        url_path=url_path(orphan.call_control_id),
        instance=instance,
        duration=duration,
        sample_rate=sample_rate,
        reason="recovered",
        recovered=True,
    )
    facts = orphan.facts
    try:
        paused = [
            [start, duration if end is None else min(end, duration)]
            for start, end in facts.get("paused", [])
            if start < duration
        ]
        return RecordingCompleted(
            **known,
            codec=facts.get("codec"),
            legs=facts.get("legs"),
            paused=paused,
            media=facts.get("media", []),
        )
    except (TypeError, ValueError):  # a sidecar of another version: the file is still announced
        log.warning(
            "recording sidecar facts unreadable, recovered without them",
            extra={"path": str(orphan.sidecar)},
        )
        return RecordingCompleted(**known, codec=None)
