"""The ASGI app: Telnyx's media-stream WebSocket, recordings, and the operational routes; its
lifespan runs the instance (``IngestService.running``).

| route | does |
| --- | --- |
| ``WS /streams/telnyx`` | Telnyx media streaming, both directions (``transports.stream_endpoint``) |
| ``GET /calls/{call_control_id}/recording.wav`` | any call's recording: from this instance's spool while it is written (or waits for the store), else from the store (Range, ETag); 404 when there is none |
| ``GET /healthz``, ``/readyz``, ``/metrics`` | probes and Prometheus metrics |

One worker of a host (``voicetap ingest --workers N``) answers ``/readyz`` and ``/metrics`` for
the host: its own and each sibling's (``?worker``: that worker alone) from its private port, the
metrics labelled by worker (``host_metrics``).

Every HTTP route but the probes is behind ``AccessGuard`` (``VOICETAP_API_TOKEN`` or a signed
link; ``/metrics`` behind ``VOICETAP_METRICS_TOKEN`` when set); the WebSocket keeps Telnyx's own
per-call token.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from media_ingest.host_metrics import merged, parse
from media_ingest.keys import STREAM_PATH
from media_ingest.recordings_http import recording_route
from media_ingest.service import IngestService
from media_ingest.siblings import Siblings
from media_ingest.transports.stream_endpoint import stream_endpoint
from voicetap_common.access import Access
from voicetap_common.access_http import AccessGuard, refused_counter
from voicetap_common.http import operational_routes, readiness_response
from voicetap_common.recordings_http import stored_recording
from voicetap_common.serving import WorkFailure


def create_app(
    service: IngestService,
    failure: WorkFailure,
    access: Access,
    console_url: str | None = None,
    siblings: Siblings | None = None,
) -> Starlette:
    """``siblings``: the other workers of this host, if it runs several."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with service.running(failure):
            yield

    host_routes = (
        []
        if siblings is None
        else [
            Route("/readyz", host_readiness(service, siblings)),
            Route("/metrics", host_metrics(service, siblings, access.metrics_token)),
        ]
    )
    return Starlette(
        routes=[
            WebSocketRoute(
                STREAM_PATH,
                stream_endpoint(
                    service.streams, None if siblings is None else siblings.holder_port
                ),
            ),
            *host_routes,  # before the operational /readyz and /metrics, which they replace
            Route(
                "/calls/{call_control_id:path}/recording.wav",
                recording_route(
                    service.data_dir,
                    service.calls.__contains__,
                    stored_recording(service.uploads.store),
                ),
                methods=["GET"],
            ),
            *operational_routes(
                service.prometheus, service.ready, service="ingest", console_url=console_url
            ),
        ],
        middleware=[
            Middleware(
                AccessGuard,
                tokens=access.tokens,
                link_key=access.link_key,
                metrics_token=access.metrics_token,
                refused=refused_counter(service.prometheus),
                service="ingest",
            )
        ],
        lifespan=lifespan,
    )


def host_metrics(
    service: IngestService, siblings: Siblings, token: str | None
) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        if "worker" in request.query_params:  # this worker alone (a sibling asks)
            body = generate_latest(service.prometheus)
        else:
            answers = await siblings.metrics(token)
            body = merged(
                {
                    service.instance: list(service.prometheus.collect()),
                    **{w: None if t is None else parse(t) for w, t in answers.items()},
                }
            )
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def host_readiness(
    service: IngestService, siblings: Siblings
) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(request: Request) -> Response:
        checks = await service.ready()
        if "worker" not in request.query_params:
            checks.update(await siblings.ready())
        return readiness_response(checks)

    return readyz
