"""The console's pages (server-rendered HTML) and the JSON and event streams their scripts read.

| route | shows |
| --- | --- |
| ``/`` | live calls: levels, who talks, over-talk, media, health; recently ended calls |
| ``/calls/{id}`` | one call: live levels and transcript, then recording, timeline, stats |
| ``/search?q=`` | transcript search (the indexer's syntax), each hit playable from its moment |
| ``/ops`` | topics, groups (lag, pending), dead letters, instances, service health |
| ``/events/calls``, ``/events/calls/{id}`` | Server-Sent Events fed by the hub |
| ``/calls/{id}/transcript.json`` | the transcript with each line's place on the recording |
"""

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from voicetap_console import ops
from voicetap_console.board import parse_time
from voicetap_console.hub import Hub, sse_event
from voicetap_console.timing import timed_segments
from voicetap_console.upstream import UpstreamError, Upstreams
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient

KEEPALIVE_S = 15.0
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
EXPORT_FORMATS = ("json", "txt", "vtt", "srt")


def templates() -> Environment:
    return Environment(
        loader=PackageLoader("voicetap_console", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Pages:
    def __init__(
        self,
        env: Environment,
        hub: Hub,
        upstreams: Upstreams,
        redis: RedisClient,
        service_urls: dict[str, str],
    ) -> None:
        self._env = env
        self._hub = hub
        self._up = upstreams
        self._redis = redis
        self._service_urls = service_urls

    def _page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self._env.get_template(name).render(**values), status_code=status)

    # -- live calls ---------------------------------------------------------------------------
    async def calls(self, request: Request) -> Response:
        return self._page("calls.html", active="calls")

    async def calls_events(self, request: Request) -> Response:
        sub = self._hub.subscribe(None)

        def first() -> bytes:
            return sse_event("snapshot", self._hub.board.snapshot())

        return StreamingResponse(
            self._hub.stream(sub, first, KEEPALIVE_S),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    # -- one call -----------------------------------------------------------------------------
    async def call(self, request: Request) -> Response:
        ccid = request.path_params["call_control_id"]
        live = self._hub.board.get(ccid)
        problem: str | None = None
        try:
            stored = await self._up.indexer_json(f"/calls/{quote(ccid, safe=':')}")
        except UpstreamError as exc:
            stored, problem = None, str(exc)
        if live is None and stored is None and problem is None:
            return self._page("missing.html", 404, active="", call_control_id=ccid)
        return self._page(
            "call.html",
            active="",
            call_control_id=ccid,
            call=live.as_json() if live is not None else None,
            stored=stored,
            problem=problem,
            formats=EXPORT_FORMATS,
            seek=request.query_params.get("t", ""),
        )

    async def call_events(self, request: Request) -> Response:
        ccid = request.path_params["call_control_id"]
        sub = self._hub.subscribe(ccid)

        def first() -> bytes:
            live = self._hub.board.get(ccid)
            return sse_event("snapshot", {"call": live.as_json() if live is not None else None})

        return StreamingResponse(
            self._hub.stream(sub, first, KEEPALIVE_S),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    async def transcript(self, request: Request) -> Response:
        ccid = request.path_params["call_control_id"]
        try:
            found = await self._up.indexer_json(f"/calls/{quote(ccid, safe=':')}/transcript")
        except UpstreamError as exc:
            return JSONResponse({"error": str(exc)}, status_code=502)
        if found is None:
            return JSONResponse({"segments": [], "partials": [], "origin": None})
        origin = self._origin(ccid, found.get("call") or {})
        return JSONResponse(
            {
                "origin": origin.isoformat() if origin else None,
                "segments": timed_segments(found.get("segments") or [], origin),
                "partials": timed_segments(found.get("partials") or [], origin),
            }
        )

    def _origin(self, ccid: str, stored_call: dict[str, Any]) -> Any:
        live = self._hub.board.get(ccid)
        if live is not None and live.timeline_origin() is not None:
            return live.timeline_origin()
        return parse_time(stored_call.get("answered_at")) or parse_time(
            stored_call.get("initiated_at")
        )

    # -- search -------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            return self._page("search.html", active="search", query="", hits=None, problem=None)
        try:
            found = await self._up.indexer_json("/search", q=query, limit=50)
        except UpstreamError as exc:
            return self._page(
                "search.html", 502, active="search", query=query, hits=None, problem=str(exc)
            )
        hits = (found or {}).get("items") or []
        starts = await self._hit_starts(hits)
        for hit in hits:
            hit["start"] = starts.get(hit["id"], 0.0)
        return self._page("search.html", active="search", query=query, hits=hits, problem=None)

    async def _hit_starts(self, hits: list[dict[str, Any]]) -> dict[str, float]:
        """Each hit's second on its call's recording, as the call page places the same line."""
        calls = sorted({hit["call_control_id"] for hit in hits})

        async def one(ccid: str) -> list[dict[str, Any]]:
            try:
                found = await self._up.indexer_json(f"/calls/{quote(ccid, safe=':')}/transcript")
            except UpstreamError:
                return []
            if found is None:
                return []
            origin = self._origin(ccid, found.get("call") or {})
            return timed_segments(found.get("segments") or [], origin)

        timed = await asyncio.gather(*(one(ccid) for ccid in calls))
        return {s["id"]: s["start"] for segments in timed for s in segments}

    # -- ops ----------------------------------------------------------------------------------
    async def ops(self, request: Request) -> Response:
        fragment = request.query_params.get("fragment") == "1"
        values = await self._ops_values()
        return self._page(
            "ops_body.html" if fragment else "ops.html",
            200 if values["problem"] is None else 503,
            active="ops",
            **values,
        )

    async def _ops_values(self) -> dict[str, Any]:
        problem = None
        try:
            found = await ops.topics(self._redis)
        except REDIS_UNAVAILABLE as exc:
            found, problem = [], f"Redis does not answer ({type(exc).__name__})"
        async with httpx.AsyncClient() as client:
            services = await ops.services(client, self._service_urls)
        return {
            "problem": problem,
            "topics": [t for t in found if not t.dead_letters],
            "dead_letters": [t for t in found if t.dead_letters],
            "instances": ops.instances(found),
            "services": services,
            "hub_clients": self._hub.subscribers,
        }
