"""The query API's routes: calls, transcripts in four formats, search, and the live transcript."""

import dataclasses
import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from transcript_indexer import formats
from transcript_indexer.query import QuerySyntaxError, number_spellings, parse_query
from transcript_indexer.sse import live_events, resume_position, stream_position
from transcript_indexer.storage.base import (
    MARK_END,
    MARK_START,
    CallFilter,
    SearchHit,
    Storage,
    StorageUnavailable,
)
from voicetap_common.access import (
    LINK_PATHS,
    MAX_LINK_TTL_SECONDS,
    LinkTarget,
    link_path,
    signed_url,
)
from voicetap_common.erasure import ErasureOutcome
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient

MAX_LIMIT = 200


@dataclasses.dataclass(frozen=True, slots=True)
class LinkOptions:
    """What ``POST /calls/{id}/links`` mints with: the key (None: no token nor secret configured,
    so no link would be accepted) and the public base URLs ("" : unknown)."""

    key: bytes | None
    ingest_url: str = ""
    indexer_url: str = ""


class BadRequest(ValueError):
    """A request parameter is wrong; the message says which and why."""


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(
            raw.replace(" ", "+")
        )  # a '+' sent unencoded arrives as a space
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time, e.g. 2026-11-23T12:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def highlighted(snippet: str) -> str:
    """The snippet as HTML: its text escaped, its highlights as ``<mark>``."""
    return (
        html.escape(snippet, quote=False).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    )


def _hit(hit: SearchHit) -> dict[str, object]:
    return {
        "call_control_id": hit.call_control_id,
        "id": hit.event_id,
        "occurred_at": hit.occurred_at.isoformat(),
        "track": hit.track or None,
        "snippet": highlighted(hit.snippet),
        "rank": hit.rank,
    }


def _page(items: list[dict[str, object]], limit: int, offset: int) -> dict[str, object]:
    more = len(items) > limit
    return {
        "items": items[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def api_routes(
    storage: Storage,
    redis: RedisClient,
    registry: CollectorRegistry,
    keepalive_ms: int,
    erase_call: Callable[[str], Awaitable[ErasureOutcome]],
    links: LinkOptions,
) -> list[Route]:
    """``erase_call``: requests a call's erasure and waits for every part
    (``voicetap_common.erasure.request_erasure``)."""
    live_clients = Gauge(
        "voicetap_indexer_live_clients", "Open live transcript streams", registry=registry
    )

    async def list_calls(request: Request) -> Response:
        limit = _int(request, "limit", 50, 1, MAX_LIMIT)
        offset = _int(request, "offset", 0, 0, 10**9)
        text = request.query_params.get("q")
        number = request.query_params.get("number")
        where = CallFilter(
            since=_time(request, "since"),
            until=_time(request, "until"),
            numbers=number_spellings(number) if number else (),
            text=parse_query(text) if text is not None else None,
        )
        calls = await storage.list_calls(where, limit + 1, offset)
        return JSONResponse(_page([c.as_json() for c in calls], limit, offset))

    async def get_call(request: Request) -> Response:
        call_control_id = request.path_params["call_control_id"]
        call = await storage.get_call(call_control_id)
        if call is None:
            return _error(404, f"no call {call_control_id}")
        return JSONResponse({**call.as_json(), "counts": await storage.counts(call_control_id)})

    async def erase(request: Request) -> Response:
        """Erase everything voicetap holds about the call, known or not (erasing twice is no error):
        200 with what went per kind, or 504 naming the parts that did not answer in time."""
        call_control_id = request.path_params["call_control_id"]
        outcome = await erase_call(call_control_id)
        body: dict[str, object] = {
            "call_control_id": call_control_id,
            "request_id": outcome.request_id,
            "removed": outcome.removed,
            "answered": outcome.answered,
        }
        if outcome.missing:
            missing = ", ".join(outcome.missing)
            return JSONResponse(
                {
                    **body,
                    "missing": outcome.missing,
                    "error": f"no answer from {missing} in time; the erasure goes on when it runs "
                    "(the call is tombstoned already)",
                },
                status_code=504,
            )
        return JSONResponse(body)

    async def mint_link(request: Request) -> Response:
        """``{"what": "recording"|"transcript", "ttl_seconds": n}`` (both optional) → the signed
        URL (``url`` null for a recording when ``VOICETAP_PUBLIC_INGEST_URL`` is unset: prefix
        ``path_and_query`` with the ingest's address)."""
        if links.key is None:
            return _error(409, "no link key: set VOICETAP_API_TOKEN or VOICETAP_LINK_SECRET")
        body = await request.body()
        try:
            asked = codec.loads(body) if body else {}
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(asked, dict):
            raise BadRequest("the body must be a JSON object")
        what = asked.get("what", "recording")
        if what not in LINK_PATHS:
            raise BadRequest("what must be recording or transcript")
        ttl = asked.get("ttl_seconds", 3600)
        if (
            not isinstance(ttl, int)
            or isinstance(ttl, bool)
            or not 1 <= ttl <= MAX_LINK_TTL_SECONDS
        ):
            raise BadRequest(f"ttl_seconds must be an integer between 1 and {MAX_LINK_TTL_SECONDS}")
        target: LinkTarget = what
        path = link_path(request.path_params["call_control_id"], target)
        base = links.ingest_url if target == "recording" else links.indexer_url
        if target == "transcript" and not base:
            base = str(request.base_url)
        now = time.time()
        path_and_query = signed_url("", links.key, path, ttl, now)
        return JSONResponse(
            {
                "what": target,
                "path_and_query": path_and_query,
                "url": f"{base.rstrip('/')}{path_and_query}" if base else None,
                "expires": int(now + ttl),
            },
            status_code=201,
        )

    async def transcript(request: Request) -> Response:
        call_control_id = request.path_params["call_control_id"]
        kind = request.query_params.get("format", "json")
        if kind != "json" and kind not in formats.RENDERERS:
            raise BadRequest("format must be one of json, txt, vtt, srt")
        found = await storage.transcript(call_control_id)
        if found is None:
            return _error(404, f"no call {call_control_id}")
        if kind == "json":
            return JSONResponse(formats.as_json(found))
        media_type, render = formats.RENDERERS[kind]
        return Response(render(found), media_type=media_type)

    async def search(request: Request) -> Response:
        query = request.query_params.get("q")
        if query is None:
            raise BadRequest("q is required")
        limit = _int(request, "limit", 20, 1, MAX_LIMIT)
        offset = _int(request, "offset", 0, 0, 10_000)
        hits = await storage.search(parse_query(query), limit + 1, offset)
        return JSONResponse({"query": query, **_page([_hit(h) for h in hits], limit, offset)})

    async def live(request: Request) -> Response:
        call_control_id = request.path_params["call_control_id"]
        if await storage.get_call(call_control_id) is None:
            return _error(404, f"no call {call_control_id}")
        position = resume_position(request.headers.get("last-event-id"))
        snapshot = None
        if position is None:
            position = await stream_position(redis, call_control_id)
            snapshot = await storage.transcript(call_control_id)

        async def events() -> AsyncIterator[bytes]:
            live_clients.inc()
            try:
                async for chunk in live_events(
                    redis, call_control_id, position, snapshot, keepalive_ms
                ):
                    yield chunk
            finally:
                live_clients.dec()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return [
        Route("/calls", _guarded(list_calls), methods=["GET"]),
        Route("/calls/{call_control_id:str}", _guarded(get_call), methods=["GET"]),
        Route("/calls/{call_control_id:str}", _guarded(erase), methods=["DELETE"]),
        Route("/calls/{call_control_id:str}/links", _guarded(mint_link), methods=["POST"]),
        Route("/calls/{call_control_id:str}/transcript", _guarded(transcript), methods=["GET"]),
        Route("/calls/{call_control_id:str}/transcript/live", _guarded(live), methods=["GET"]),
        Route("/search", _guarded(search), methods=["GET"]),
    ]


def _guarded(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Wrong parameters answer 400 with the reason, an unreachable database 503: never a 500."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except (BadRequest, QuerySyntaxError) as exc:
            return _error(400, str(exc))
        except StorageUnavailable:
            return _error(503, "the database is unavailable; try again shortly")

    return guarded
