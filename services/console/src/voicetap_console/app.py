"""The console as a Starlette app: pages, event streams, the proxied API and recordings.

The lifespan runs the topic reader and the hub's flush loop in one task group, stopped together by
one event when the server shuts down; the Redis and HTTP clients close after them.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from voicetap_common.access import Access, session_keys
from voicetap_common.access_http import PROBE_PATHS, AccessGuard, Refusals, refused_counter
from voicetap_common.http import operational_routes
from voicetap_console.board import Board
from voicetap_console.hub import Hub
from voicetap_console.login import LOGIN_PATH, LOGOUT_PATH, SESSION_COOKIE, Login
from voicetap_console.pages import Pages, templates
from voicetap_console.reader import TopicReader
from voicetap_console.upstream import Upstreams
from voicetap_sdk.backoff import sleep_or_stop
from voicetap_sdk.redis_client import RedisClient, ping

log = logging.getLogger("voicetap.console")

NO_ACCESS_CONTROL = Access(tokens=(), link_key=None, metrics_token=None)
OPEN_PATHS = PROBE_PATHS | {LOGIN_PATH, LOGOUT_PATH, "/static/console.css"}
"""What the console answers without a session: the probes, the login form and its stylesheet
(its ``/`` is the live calls page, so it is not open). Logging out needs no credential."""


async def _flush(hub: Hub, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await sleep_or_stop(stop, every_s)
        hub.flush()


def create_app(
    *,
    redis: RedisClient,
    upstreams: Upstreams,
    service_urls: dict[str, str],
    partitions: int,
    recent_calls: int,
    history_seconds: float,
    redis_timeout_s: float,
    access: Access = NO_ACCESS_CONTROL,
    session_seconds: int = 12 * 3600,
    flush_seconds: float = 0.25,
) -> Starlette:
    """The console over a Redis client and upstream clients not yet connected; it closes them.
    With ``access.tokens`` every route but ``OPEN_PATHS`` needs a session (``/login``) or the
    bearer; without, nothing is checked (``main`` serves it so on loopback only, or with
    ``VOICETAP_INSECURE_NO_AUTH``)."""
    hub = Hub(Board(recent_calls))
    reader = TopicReader(redis, hub, partitions=partitions, history_seconds=history_seconds)
    env = templates()
    env.globals["sessions"] = bool(access.tokens)
    pages = Pages(env, hub, upstreams, redis, service_urls)
    registry = CollectorRegistry()
    refused = refused_counter(registry)
    Gauge("voicetap_console_streams", "Open browser event streams", registry=registry).set_function(
        lambda: hub.subscribers
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(reader.run(stop))
                tasks.create_task(_flush(hub, flush_seconds, stop))
                log.info("console started")
                try:
                    yield
                finally:
                    stop.set()
                    hub.close()
        finally:
            await upstreams.aclose()
            await redis.aclose()
            log.info("console stopped")

    async def readiness() -> dict[str, bool]:
        return {
            "redis": await ping(redis, redis_timeout_s),
            "topics_read_back": hub.caught_up.is_set(),
        }

    login_routes: list[BaseRoute] = []
    middleware: list[Middleware] = []
    if access.tokens:
        login = Login(env, access.tokens, session_seconds, Refusals(refused, "console"))
        login_routes = [
            Route(LOGIN_PATH, login.page, methods=["GET"]),
            Route(LOGIN_PATH, login.submit, methods=["POST"]),
            Route(LOGOUT_PATH, login.logout, methods=["POST"]),
        ]
        middleware = [
            Middleware(
                AccessGuard,
                tokens=access.tokens,
                link_key=access.link_key,
                metrics_token=access.metrics_token,
                refused=refused,
                service="console",
                open_paths=OPEN_PATHS,
                session_cookie=SESSION_COOKIE,
                session_keys=session_keys(access.tokens),
                login_path=LOGIN_PATH,
            )
        ]
    static = Path(str(files("voicetap_console") / "static"))
    return Starlette(
        routes=[
            *login_routes,
            Route("/", pages.calls, methods=["GET"]),
            Route("/events/calls", pages.calls_events, methods=["GET"]),
            Route("/events/calls/{call_control_id:str}", pages.call_events, methods=["GET"]),
            Route("/calls/{call_control_id:str}", pages.call, methods=["GET"]),
            Route(
                "/calls/{call_control_id:str}/transcript.json", pages.transcript, methods=["GET"]
            ),
            Route("/recordings/{call_control_id:str}.wav", upstreams.recording, methods=["GET"]),
            Route("/api/{path:path}", upstreams.api, methods=["GET"]),
            Route("/search", pages.search, methods=["GET"]),
            Route("/ops", pages.ops, methods=["GET"]),
            Mount("/static", StaticFiles(directory=static), name="static"),
            *operational_routes(registry, readiness),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
