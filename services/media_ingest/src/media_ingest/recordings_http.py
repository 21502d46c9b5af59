"""``GET /calls/{call_control_id}/recording.wav``: any call's recording, from any instance.

A call this instance records (or has finished and not yet stored) is served from its spool, also
while it is written (``x-voicetap-recording: in-progress``); any other from the recordings store,
with HTTP Range and ETag (``voicetap_common.recordings_http``).
"""

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from media_ingest.protocol.wav import read_header
from media_ingest.recording.files import spool_path
from voicetap_common.recordings_http import RecordingHandler

_CHUNK = 1 << 16


def _snapshot(path: Path) -> int:
    """Bytes of the file that form a valid WAV right now: the header counts only audio already
    appended (the writer appends before it updates the sizes), so this never cuts a frame."""
    try:
        return read_header(path).file_size
    except ValueError as exc:
        raise OSError(f"not a readable WAV yet: {exc}") from None


def _read(path: Path, size: int) -> Iterator[bytes]:
    with open(path, "rb") as file:
        left = size
        while left > 0:
            chunk = file.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def recording_route(
    data_dir: Path, recording_now: Callable[[str], bool], stored: RecordingHandler
) -> Callable[[Request], Awaitable[Response]]:
    """The route's handler; ``recording_now(call_control_id)``: this instance still writes it;
    ``stored``: the answer from the store for a call not in this instance's spool."""

    async def recording(request: Request) -> Response:
        call_control_id = request.path_params["call_control_id"]
        path = spool_path(data_dir, call_control_id)
        try:
            size = _snapshot(path)
        except (FileNotFoundError, NotADirectoryError):
            return await stored(request, call_control_id)
        except OSError:
            return JSONResponse({"error": "recording not readable yet"}, status_code=503)
        state = "in-progress" if recording_now(call_control_id) else "complete"
        return StreamingResponse(
            _read(path, size),
            media_type="audio/wav",
            headers={"content-length": str(size), "x-voicetap-recording": state},
        )

    return recording
