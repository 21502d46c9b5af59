"""Health, readiness and metrics routes that every service's ASGI app mounts, and its ``/`` that
links to the console (a person who opens a service's address lands somewhere useful)."""

import html
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def operational_routes(
    registry: CollectorRegistry,
    readiness: ReadinessCheck,
    *,
    service: str | None = None,
    console_url: str | None = None,
) -> list[Route]:
    """``/healthz`` (the process answers), ``/readyz`` (every dependency answers), ``/metrics``,
    and with ``console_url`` a ``/`` naming ``service`` and linking to the console.

    ``readiness`` returns one boolean per dependency; any false one makes ``/readyz`` 503 and the
    body names it, so a probe's failure says what is down.
    """

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        return readiness_response(await readiness())

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = (
        []
        if console_url is None
        else [Route("/", home_page(service, console_url), methods=["GET"])]
    )
    return routes + [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def readiness_response(checks: dict[str, bool]) -> Response:
    """``/readyz``'s answer: 200 when every check passed, else 503; the body names each."""
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def home_page(service: str | None, console_url: str) -> Callable[[Request], Awaitable[Response]]:
    link = html.escape(console_url, quote=True)
    name = html.escape(f"voicetap {service}" if service else "voicetap")
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{name}</title>"
        f"<p>{name} has no pages of its own: calls, recordings, transcripts and search are in the "
        f'console, <a href="{link}">{link}</a>.</p>'
        '<p>Probes: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>; '
        'metrics: <a href="/metrics">/metrics</a>.</p></html>'
    )

    async def home(_: Request) -> Response:
        return HTMLResponse(body)

    return home
