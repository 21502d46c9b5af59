"""The gateway's ASGI app: verify → validate → de-duplicate → publish, then answer.

It answers 2xx only after Redis stored the event, and 503 (so that Telnyx retries) when Redis
does not confirm within ``gateway_answer_deadline_seconds``, well inside Telnyx's 2 s.
"""

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicetap_common import redis_client
from voicetap_common.http import operational_routes
from voicetap_common.streams import Producer
from voicetap_common.topics import WEBHOOK_DEAD_LETTERS, telnyx_topic
from webhook_gateway.envelope import EventKey, MalformedEvent, read_event_key
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.publisher import Publication, PublishBatcher
from webhook_gateway.settings import GatewaySettings
from webhook_gateway.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, SignatureVerifier, load_public_key

log = logging.getLogger("voicetap.gateway")

WEBHOOK_PATH = "/webhooks/telnyx"


class BodyTooLarge(Exception):
    pass


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (never buffered whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(status: int, error: str, **extra: str) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status)


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None) -> Starlette:
    registry = registry or CollectorRegistry()
    metrics = GatewayMetrics(registry)
    verifier = (
        None
        if settings.gateway_insecure_skip_verification
        else SignatureVerifier(load_public_key(settings.telnyx_public_key or ""), settings.gateway_signature_tolerance_seconds)
    )
    redis = redis_client.connect(settings)
    batcher = PublishBatcher(
        redis,
        dedupe_window_seconds=settings.gateway_dedupe_window_seconds,
        maxlen=settings.topic_maxlen,
        timeout_seconds=settings.redis_timeout_seconds,
    )
    dead_letters = Producer(redis, settings.topic_maxlen)
    deadline = settings.gateway_answer_deadline_seconds

    async def dead_letter(body: bytes, reason: str, request: Request) -> None:
        """Keep a signed but unusable body: it came from Telnyx, and nothing from Telnyx is lost."""
        fields = {
            "reason": reason,
            "body": body,
            "telnyx_timestamp": request.headers.get(TIMESTAMP_HEADER, ""),
            "received_at": f"{time.time():.6f}",
        }
        with contextlib.suppress(Exception):
            await dead_letters.publish_raw(WEBHOOK_DEAD_LETTERS, fields)

    async def receive_webhook(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return await _receive(request)
        finally:
            metrics.latency.observe(time.perf_counter() - started)

    async def _receive(request: Request) -> Response:
        try:
            body = await read_bounded_body(request, settings.gateway_max_body_bytes)
        except BodyTooLarge:
            metrics.webhooks.labels("too_large").inc()
            return _refusal(413, f"body larger than {settings.gateway_max_body_bytes} bytes")
        if verifier is not None:
            try:
                verifier.verify(request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER), body)
            except SignatureError as exc:
                metrics.webhooks.labels("unauthorized").inc()
                log.warning("webhook refused: bad signature", extra={"reason": str(exc), "client": _client(request)})
                return _refusal(401, f"invalid signature: {exc}")
        try:
            key = read_event_key(body)
        except MalformedEvent as exc:
            metrics.webhooks.labels("malformed").inc()
            log.warning("signed webhook is not a usable event; dead-lettered", extra={"reason": exc.reason})
            await dead_letter(body, exc.reason, request)
            return _refusal(exc.status, exc.reason, dead_letter_topic=WEBHOOK_DEAD_LETTERS)
        return await _publish(key, body)

    async def _publish(key: EventKey, body: bytes) -> Response:
        topic = telnyx_topic(key.event_type)
        fields: list[bytes | str] = ["id", key.event_id, "type", key.event_type, "event", body, "received_at", f"{time.time():.6f}"]
        if key.call_control_id:
            fields += ["call_control_id", key.call_control_id]
        if key.attempt:
            fields += ["attempt", key.attempt]
        try:
            entry_id = await batcher.publish(Publication(topic, key.event_id, tuple(fields)), deadline)
        except Exception as exc:
            metrics.webhooks.labels("unavailable").inc()
            metrics.redis_up.set(0)
            log.error("redis did not store the webhook; answering 503 so Telnyx retries", extra={"error": repr(exc), "event_id": key.event_id})
            return _refusal(503, "event store unavailable, retry later")
        metrics.redis_up.set(1)
        metrics.batch_size.set(batcher.last_batch_size)
        if entry_id is None:
            metrics.webhooks.labels("duplicate").inc()
            return JSONResponse({"status": "duplicate", "id": key.event_id})
        metrics.webhooks.labels("published").inc()
        metrics.published.labels(key.event_type).inc()
        return JSONResponse({"status": "stored", "id": key.event_id, "topic": topic, "entry": entry_id})

    async def readiness() -> dict[str, bool]:
        return {"redis": await redis_client.ping(redis, settings.redis_timeout_seconds)}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if verifier is None:
            log.critical(
                "SIGNATURE VERIFICATION IS DISABLED (GATEWAY_INSECURE_SKIP_VERIFICATION=true): anyone can inject events. "
                "Development only."
            )
        log.info("gateway ready", extra={"path": WEBHOOK_PATH, "redis": settings.redis_url.split("@")[-1]})
        try:
            yield
        finally:
            await redis.aclose()

    routes = [Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]), *operational_routes(registry, readiness)]
    return Starlette(routes=routes, lifespan=lifespan)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"
