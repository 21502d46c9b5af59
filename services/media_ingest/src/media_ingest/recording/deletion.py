"""Deleting a call's recording wherever it is kept: the local spool (while the call is recorded,
or while its upload waits) and the recordings store (``VOICETAP_RECORDINGS_URL``, ``file://`` or
``s3://``), so an erasure leaves nothing whichever instance or storage held it."""

from collections.abc import Iterator
from urllib.parse import unquote

from media_ingest.recording.files import (
    MAX_PARTS,
    call_of,
    event_path,
    part_object,
    sidecar_path,
)
from media_ingest.recording.spool import Spool
from voicetap_common.recordings_store import RecordingsStore, object_name

PARTS = range(1, MAX_PARTS + 1)


async def delete_recording(spool: Spool, store: RecordingsStore, call_control_id: str) -> int:
    """Delete the call's spooled files and its stored object; 1 when there was a recording, else 0.

    A store that cannot be reached raises ``StoreError``: the erasure's entry stays pending and is
    retried. An upload under way when the spool files go deletes what it stored (``Uploads``)."""
    wav = spool.directory / object_name(call_control_id)
    parts = [spool.directory / object_name(part_object(call_control_id, k)) for k in PARTS]
    spooled = False
    for path in (wav, *parts):
        spooled |= any(p.exists() for p in (path, event_path(path), sidecar_path(path)))
        spool.erase(path)
    stored = await store.head(call_control_id) is not None
    if stored:
        await store.delete(call_control_id)
    for k in PARTS:  # a part kept apart until its call's parts are joined (takeover)
        await store.delete(part_object(call_control_id, k))
    return int(spooled or stored)


def spooled_calls(spool: Spool) -> Iterator[str]:
    """The call ids of the recordings in this instance's spool (file names are object names)."""
    if spool.directory.is_dir():
        for wav in spool.directory.glob("*.wav"):
            yield call_of(unquote(wav.stem))
