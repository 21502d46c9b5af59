"""The gateway's ASGI app: the webhook endpoint on its hot path, Starlette for the rest."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from voicetap_common import redis_client
from voicetap_common.http import operational_routes
from voicetap_common.retention import RetentionSweeper
from voicetap_common.streams import Producer
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.publisher import PublishBatcher
from webhook_gateway.settings import GatewaySettings
from webhook_gateway.signature import SignatureVerifier, load_public_key
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


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None) -> GatewayApp:
    registry = registry or CollectorRegistry()
    metrics = GatewayMetrics(registry)
    verifier = (
        None
        if settings.gateway_insecure_skip_verification
        else SignatureVerifier(
            load_public_key(settings.telnyx_public_key or ""),
            settings.gateway_signature_tolerance_seconds,
        )
    )
    redis = redis_client.connect(settings)
    webhook = WebhookEndpoint(
        verifier=verifier,
        batcher=PublishBatcher(
            redis,
            dedupe_window_seconds=settings.gateway_dedupe_window_seconds,
            maxlen=settings.topic_maxlen,
            timeout_seconds=settings.redis_timeout_seconds,
        ),
        dead_letters=Producer(redis, settings.topic_maxlen),
        metrics=metrics,
        max_body_bytes=settings.gateway_max_body_bytes,
        answer_deadline_seconds=settings.gateway_answer_deadline_seconds,
        partitions=settings.topic_partitions,
    )

    async def readiness() -> dict[str, bool]:
        return {"redis": await redis_client.ping(redis, settings.redis_timeout_seconds)}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if verifier is None:
            log.critical(
                "SIGNATURE VERIFICATION IS DISABLED (GATEWAY_INSECURE_SKIP_VERIFICATION=true): anyone can inject events. "
                "Development only."
            )
        log.info(
            "gateway ready",
            extra={"path": WEBHOOK_PATH, "redis": settings.redis_url.split("@")[-1]},
        )
        stop = asyncio.Event()
        sweeper = None
        if settings.topic_max_age_seconds:
            sweeper = asyncio.create_task(
                RetentionSweeper(
                    redis, settings.topic_max_age_seconds, on_trimmed=metrics.count_trimmed
                ).run(stop)
            )
        try:
            yield
        finally:
            stop.set()
            if sweeper is not None:
                await sweeper
            await redis.aclose()

    return GatewayApp(
        webhook, Starlette(routes=operational_routes(registry, readiness), lifespan=lifespan)
    )
