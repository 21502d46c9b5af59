"""What the browser needs from the other services, from the console's own origin.

``/api/...`` forwards read-only query API requests to the transcript indexer (with its bearer
token, which the browser never sees; so are the recordings fetched from the ingest, with the
stack's); ``/recordings/{id}.wav`` forwards a recording from
media_ingest and answers ``Range`` requests (206) whether or not the ingest does, since an audio
element can only seek in a resource it may ask ranges of.
"""

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voicetap_console.ranges import Unsatisfiable, byte_range

# The indexer routes a page reads; the live transcript is not among them (the console has its own).
API_PATHS = re.compile(r"^(calls|search|calls/[^/]+|calls/[^/]+/transcript)$")


class UpstreamError(Exception):
    """A service the console reads did not answer as it should; the message says which."""


class Upstreams:
    """Clients (not yet connected) of the indexer and the ingest."""

    def __init__(
        self,
        indexer_url: str,
        indexer_token: str | None,
        ingest_url: str,
        ingest_token: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.indexer_url = indexer_url.rstrip("/")
        self.ingest_url = ingest_url.rstrip("/")
        self.indexer = httpx.AsyncClient(
            base_url=self.indexer_url, headers=_bearer(indexer_token), timeout=timeout
        )
        self.ingest = httpx.AsyncClient(
            base_url=self.ingest_url, headers=_bearer(ingest_token), timeout=timeout
        )

    async def aclose(self) -> None:
        await self.indexer.aclose()
        await self.ingest.aclose()

    async def indexer_json(self, path: str, **params: Any) -> Any | None:
        """The indexer's JSON answer, None on 404; raises :class:`UpstreamError` otherwise."""
        try:
            response = await self.indexer.get(path, params=params)
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the transcript indexer at {self.indexer_url} does not answer ({type(exc).__name__})"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UpstreamError(_said("the transcript indexer", response))
        return response.json()

    async def api(self, request: Request) -> Response:
        path = request.path_params["path"]
        if API_PATHS.match(path) is None:
            return JSONResponse({"error": f"no API route /api/{path}"}, status_code=404)
        try:
            response = await self.indexer.get("/" + path, params=request.query_params)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"error": f"the transcript indexer does not answer ({type(exc).__name__})"},
                status_code=502,
            )
        headers = {"cache-control": "no-store"}
        if "format" in request.query_params and response.status_code == 200:
            name = path.replace("/", "-")
            suffix = request.query_params["format"]
            headers["content-disposition"] = f'attachment; filename="{name}.{suffix}"'
        return Response(
            response.content,
            status_code=response.status_code,
            media_type=response.headers.get("content-type"),
            headers=headers,
        )

    async def recording(self, request: Request) -> Response:
        ccid = request.path_params["call_control_id"]
        asked = request.headers.get("range")
        upstream = self.ingest.build_request(
            "GET",
            f"/calls/{quote(ccid, safe=':')}/recording.wav",
            headers={"range": asked} if asked else None,
        )
        try:
            response = await self.ingest.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"error": f"media_ingest does not answer ({type(exc).__name__})"}, status_code=502
            )
        if response.status_code not in (200, 206):
            body = await response.aread()
            await response.aclose()
            return Response(
                body,
                status_code=response.status_code,
                media_type=response.headers.get("content-type"),
            )
        headers = {
            "accept-ranges": "bytes",
            "cache-control": "no-store",
            "x-voicetap-recording": response.headers.get("x-voicetap-recording", "complete"),
        }
        if response.status_code == 206:  # the ingest answered the range itself
            for name in ("content-range", "content-length"):
                if name in response.headers:
                    headers[name] = response.headers[name]
            return StreamingResponse(
                _relay(response), status_code=206, media_type="audio/wav", headers=headers
            )
        size = int(response.headers.get("content-length", "-1"))
        try:
            wanted = byte_range(asked, size) if size >= 0 else None
        except Unsatisfiable:
            await response.aclose()
            return Response(
                status_code=416, headers={"content-range": f"bytes */{size}", **headers}
            )
        if wanted is None:
            if size >= 0:
                headers["content-length"] = str(size)
            return StreamingResponse(_relay(response), media_type="audio/wav", headers=headers)
        first, last = wanted
        headers["content-range"] = f"bytes {first}-{last}/{size}"
        headers["content-length"] = str(last - first + 1)
        return StreamingResponse(
            _relay(response, first, last), status_code=206, media_type="audio/wav", headers=headers
        )


async def _relay(
    response: httpx.Response, first: int = 0, last: int | None = None
) -> AsyncIterator[bytes]:
    """The upstream body, bytes ``first`` to ``last`` (inclusive) of it."""
    at = 0
    try:
        async for chunk in response.aiter_raw():
            end = at + len(chunk)
            if end > first:
                piece = chunk[max(first - at, 0) :]
                if last is not None:
                    piece = piece[: max(last + 1 - max(at, first), 0)]
                if piece:
                    yield piece
            at = end
            if last is not None and at > last:
                return
    finally:
        await response.aclose()


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def _said(service: str, response: httpx.Response) -> str:
    try:
        detail = response.json().get("error", "")
    except ValueError:
        detail = ""
    return f"{service} answered {response.status_code}" + (f": {detail}" if detail else "")
