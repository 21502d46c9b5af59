"""The gateway's ASGI app: the webhook endpoint on its hot path, Starlette for the rest.

``create_app`` takes plain, typed arguments (``main`` reads them from the settings) and builds
every object; the lifespan starts the one long-running loop (retention, when an age is set) in a
``TaskGroup`` with one stop event, and closes Redis after it. The Redis client connects on first
use, so building the app does no I/O.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from voicetap_common.access_http import AccessGuard, refused_counter
from voicetap_common.http import operational_routes
from voicetap_sdk import redis_client
from voicetap_sdk.streams import Producer
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.publisher import PublishBatcher
from webhook_gateway.retention import RetentionSweeper
from webhook_gateway.signature import SignatureVerifier
from webhook_gateway.webhook import WebhookEndpoint

log = logging.getLogger("voicetap.gateway")

WEBHOOK_PATH = "/webhooks/telnyx"


class GatewayApp:
    """Sends ``WEBHOOK_PATH`` straight to the endpoint, everything else (probes, metrics, lifespan) to Starlette."""

    def __init__(self, webhook: WebhookEndpoint, rest: Starlette) -> None:
        self._webhook = webhook
        self._rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self._webhook(scope, receive, send)
        else:
            await self._rest(scope, receive, send)


def create_app(
    *,
    verifier: SignatureVerifier | None,
    redis_url: str,
    redis_cluster: bool,
    redis_timeout_seconds: float,
    topic_maxlen: int,
    topic_partitions: int,
    topic_max_age_seconds: int,
    dedupe_window_seconds: int,
    max_body_bytes: int,
    answer_deadline_seconds: float,
    console_url: str | None = None,
    metrics_token: str | None = None,
    registry: CollectorRegistry | None = None,
) -> GatewayApp:
    """The gateway; ``verifier`` None accepts unsigned webhooks (development only, logged loudly).

    Its one route that is not Telnyx's is ``/metrics``: behind ``metrics_token`` when set. The
    gateway holds no call content, so it takes no ``VOICETAP_API_TOKEN`` and may listen on any
    address without one (docs/DESIGN.md)."""
    registry = registry or CollectorRegistry()
    metrics = GatewayMetrics(registry)
    redis = redis_client.connect(
        redis_url, cluster=redis_cluster, timeout_seconds=redis_timeout_seconds
    )
    webhook = WebhookEndpoint(
        verifier=verifier,
        batcher=PublishBatcher(
            redis,
            dedupe_window_seconds=dedupe_window_seconds,
            maxlen=topic_maxlen,
            timeout_seconds=redis_timeout_seconds,
        ),
        dead_letters=Producer(redis, topic_maxlen),
        metrics=metrics,
        max_body_bytes=max_body_bytes,
        answer_deadline_seconds=answer_deadline_seconds,
        partitions=topic_partitions,
    )
    sweeper = (
        RetentionSweeper(redis, topic_max_age_seconds, on_trimmed=metrics.count_trimmed)
        if topic_max_age_seconds
        else None
    )

    async def readiness() -> dict[str, bool]:
        return {"redis": await redis_client.ping(redis, redis_timeout_seconds)}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if verifier is None:
            log.critical(
                "SIGNATURE VERIFICATION IS DISABLED (GATEWAY_INSECURE_SKIP_VERIFICATION=true): anyone can inject events. "
                "Development only."
            )
        log.info("gateway ready", extra={"path": WEBHOOK_PATH, "redis": redis_url.split("@")[-1]})
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                if sweeper is not None:
                    group.create_task(sweeper.run(stop))
                try:
                    yield
                finally:
                    stop.set()
        finally:
            await redis.aclose()

    guard = Middleware(
        AccessGuard,
        tokens=(),
        link_key=None,
        metrics_token=metrics_token,
        refused=refused_counter(registry),
        service="gateway",
    )
    return GatewayApp(
        webhook,
        Starlette(
            routes=operational_routes(
                registry, readiness, service="gateway", console_url=console_url
            ),
            middleware=[guard],
            lifespan=lifespan,
        ),
    )
