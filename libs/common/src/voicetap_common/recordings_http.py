"""``GET /calls/{call_control_id}/recording.wav`` from the recordings store, on every instance that
serves recordings (each ingest instance, the indexer): one base URL finds any call's recording.

HTTP Range (206, one range; browsers' audio elements seek with it), ``ETag`` with
``If-None-Match`` (304) and ``If-Range``; 404 when the store has no such recording, 503 when the
store does not answer.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voicetap_common.http_range import Unsatisfiable, parse_range
from voicetap_common.recordings_store import RecordingsStore, StoreError

RecordingHandler = Callable[[Request, str], Awaitable[Response]]


def stored_recording(store: RecordingsStore) -> RecordingHandler:
    """A handler answering for ``call_control_id`` from ``store``."""

    async def recording(request: Request, call_control_id: str) -> Response:
        try:
            info = await store.head(call_control_id)
        except StoreError:
            return JSONResponse({"error": "the recordings store does not answer"}, status_code=503)
        if info is None:
            return JSONResponse({"error": "no recording of this call"}, status_code=404)
        headers = {
            "accept-ranges": "bytes",
            "etag": info.etag,
            "x-voicetap-recording": "complete",
        }
        if _matches(request.headers.get("if-none-match"), info.etag):
            return Response(status_code=304, headers=headers)
        header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range != info.etag:
            header = None  # the client's copy is another version: send the whole object
        try:
            byte_range = parse_range(header, info.size)
        except Unsatisfiable:
            return Response(
                status_code=416, headers={**headers, "content-range": f"bytes */{info.size}"}
            )
        body = store.read(call_control_id, byte_range, info.etag)
        if byte_range is None:
            headers["content-length"] = str(info.size)
            return StreamingResponse(body, media_type="audio/wav", headers=headers)
        headers["content-length"] = str(byte_range.length)
        headers["content-range"] = byte_range.content_range(info.size)
        return StreamingResponse(body, status_code=206, media_type="audio/wav", headers=headers)

    return recording


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags
