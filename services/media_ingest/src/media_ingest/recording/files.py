"""Where a call's recording and its companions live in the local spool, and the URL path that
serves it.

A recording is written to ``VOICETAP_DATA_DIR/spool/<name>.wav`` while the call runs, with its
sidecar ``<name>.json`` (crash-safe facts); when the call ends, ``<name>.event`` (the completed
event, waiting for the upload) replaces the sidecar until the store holds the file
(``media_ingest.uploads``). ``<name>`` is the store's object name for the call.
"""

from pathlib import Path

from voicetap_common.recordings_store import object_name


def spool_dir(data_dir: Path) -> Path:
    return data_dir / "spool"


def spool_path(data_dir: Path, call_control_id: str) -> Path:
    return spool_dir(data_dir) / object_name(call_control_id)


def part_path(data_dir: Path, call_control_id: str, part: int) -> Path:
    """Where this instance writes part ``part`` of a call (1: the call's own name; a later part,
    after a takeover, ``<stem>.p<part>.wav``, so that it never meets a dead holder's file in a
    shared directory)."""
    if part == 1:
        return spool_path(data_dir, call_control_id)
    return spool_dir(data_dir) / object_name(part_object(call_control_id, part))


MAX_PARTS = 8  # takeovers of one call that erasure looks for (each one a lost instance)


def part_object(call_control_id: str, part: int) -> str:
    """The store's key (as a call id) of a part kept apart until the parts are joined."""
    return f"{call_control_id}.part{part}"


def call_of(name: str) -> str:
    """The call a spooled file's (unquoted) stem belongs to: itself, or the call of a part."""
    stem, dot, part = name.rpartition(".part")
    return stem if dot and part.isdigit() else name


def sidecar_path(wav: Path) -> Path:
    return wav.with_suffix(".json")


def event_path(wav: Path) -> Path:
    return wav.with_suffix(".event")


def temporary_path(sidecar: Path) -> Path:
    return sidecar.with_suffix(sidecar.suffix + ".tmp")


def joining_path(wav: Path) -> Path:
    """Where the parts of a call taken over are joined before the file replaces its last part."""
    return wav.with_suffix(".joining")


def url_path(call_control_id: str) -> str:
    return f"/calls/{call_control_id}/recording.wav"
