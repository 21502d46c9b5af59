"""Health, readiness and metrics routes that every service's ASGI app mounts."""

from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def operational_routes(registry: CollectorRegistry, readiness: ReadinessCheck) -> list[Route]:
    """``/healthz`` (the process answers), ``/readyz`` (every dependency answers), ``/metrics``.

    ``readiness`` returns one boolean per dependency; any false one makes ``/readyz`` 503 and the
    body names it, so a probe's failure says what is down.
    """

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
