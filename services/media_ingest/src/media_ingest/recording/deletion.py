"""Deleting a call's recording wherever it is kept: the local spool (while the call is recorded,
or while its upload waits) and the recordings store (``VOICETAP_RECORDINGS_URL``, ``file://`` or
``s3://``), so an erasure leaves nothing whichever instance or storage held it."""

from collections.abc import Iterator
from urllib.parse import unquote

from media_ingest.recording.files import event_path, sidecar_path
from media_ingest.recording.spool import Spool
from voicetap_common.recordings_store import RecordingsStore, object_name


async def delete_recording(spool: Spool, store: RecordingsStore, call_control_id: str) -> int:
    """Delete the call's spooled files and its stored object; 1 when there was a recording, else 0.

    A store that cannot be reached raises ``StoreError``: the erasure's entry stays pending and is
    retried. An upload under way when the spool files go deletes what it stored (``Uploads``)."""
    wav = spool.directory / object_name(call_control_id)
    spooled = any(path.exists() for path in (wav, event_path(wav), sidecar_path(wav)))
    spool.erase(wav)
    stored = await store.head(call_control_id) is not None
    if stored:
        await store.delete(call_control_id)
    return int(spooled or stored)


def spooled_calls(spool: Spool) -> Iterator[str]:
    """The call ids of the recordings in this instance's spool (file names are object names)."""
    if spool.directory.is_dir():
        for wav in spool.directory.glob("*.wav"):
            yield unquote(wav.stem)
