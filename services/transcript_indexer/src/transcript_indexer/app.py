"""The query API as a Starlette app: the routes, the operational routes, and the bearer token."""

import asyncio
import hmac

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from transcript_indexer.routes import api_routes
from transcript_indexer.settings import IndexerSettings
from transcript_indexer.storage.base import Storage
from voicetap_common.http import operational_routes
from voicetap_common.redis_client import RedisClient, ping

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers carry no token


class BearerToken:
    """Answers 401 to any request but the probes that lacks ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                response = JSONResponse(
                    {"error": "a valid bearer token is required"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def create_app(
    settings: IndexerSettings, storage: Storage, redis: RedisClient, registry: CollectorRegistry
) -> ASGIApp:
    """The API over an opened ``storage``; ``redis`` must allow blocking reads of the keep-alive length."""

    bound = settings.redis_timeout_seconds

    async def database_answers() -> bool:
        try:
            return await asyncio.wait_for(storage.ping(), bound)
        except TimeoutError:
            return False

    async def readiness() -> dict[str, bool]:
        database, redis_ok = await asyncio.gather(database_answers(), ping(redis, bound))
        return {"database": database, "redis": redis_ok}

    keepalive_ms = int(settings.indexer_sse_keepalive_seconds * 1000)
    app = Starlette(
        routes=[
            *api_routes(storage, redis, registry, keepalive_ms),
            *operational_routes(registry, readiness),
        ]
    )
    token = settings.indexer_api_token
    return BearerToken(app, token.get_secret_value()) if token is not None else app
