"""The ASGI app: Telnyx's media-stream WebSocket, recordings, and the operational routes.

| route | does |
| --- | --- |
| ``WS /streams/telnyx`` | Telnyx media streaming, both directions (``websocket``) |
| ``GET /calls/{call_control_id}/recording.wav`` | the call's recording, also while it is being written; 404 when this instance has none |
| ``GET /healthz``, ``/readyz``, ``/metrics`` | probes and Prometheus metrics |
"""

import struct
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from media_ingest.calls import recording_path
from media_ingest.control import STREAM_PATH
from media_ingest.service import IngestService
from media_ingest.wav import HEADER_SIZE
from media_ingest.websocket import stream_endpoint
from voicetap_common.http import operational_routes

_CHUNK = 1 << 16


def _snapshot(path: Path) -> int:
    """Bytes of the file that form a valid WAV right now: the header counts only audio already
    appended (the writer appends before it updates the sizes), so this never cuts a frame."""
    with open(path, "rb") as file:
        header = file.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise OSError("truncated header")
    return HEADER_SIZE + struct.unpack_from("<I", header, 40)[0]


def _read(path: Path, size: int) -> Iterator[bytes]:
    with open(path, "rb") as file:
        left = size
        while left > 0:
            chunk = file.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def create_app(service: IngestService) -> Starlette:
    data_dir = service.settings.voicetap_data_dir

    async def recording(request: Request) -> Response:
        path = recording_path(data_dir, request.path_params["call_control_id"])
        try:
            size = _snapshot(path)
        except (FileNotFoundError, NotADirectoryError):
            return JSONResponse(
                {"error": "no recording of this call on this instance"}, status_code=404
            )
        except OSError:
            return JSONResponse({"error": "recording not readable yet"}, status_code=503)
        recording_now = request.path_params["call_control_id"] in service.calls
        return StreamingResponse(
            _read(path, size),
            media_type="audio/wav",
            headers={
                "content-length": str(size),
                "x-voicetap-recording": "in-progress" if recording_now else "complete",
            },
        )

    app = Starlette(
        routes=[
            WebSocketRoute(STREAM_PATH, stream_endpoint),
            Route("/calls/{call_control_id:path}/recording.wav", recording, methods=["GET"]),
            *operational_routes(service.prometheus, service.ready),
        ]
    )
    app.state.service = service
    return app
