"""compose.yaml run for real: the images built from deploy/Dockerfile, the stack up in a Docker
engine, simulated calls played against it from the host, an indexer killed and scaled, the stack
taken down and up again. Every service is on the host's network (tests/docker/compose.test.yaml)."""

import dataclasses
import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from redis import Redis

from .stack import (
    BASE_IMAGE,
    COLD_BUILD_SECONDS,
    COMPOSE_FILE,
    ROOT,
    Stack,
    docker,
    parse_summary,
    wait_ready,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(COLD_BUILD_SECONDS + 300)]

SERVICES = ("gateway", "ingest", "indexer")
CHECKS = (
    "gateway",
    "ingest",
    "indexer",
    "webhooks",
    "topics",
    "media",
    "recordings",
    "transcripts",
)
GROUP = "transcript_indexer"
# What the transcript indexer's group reads in these calls (it also reads command and erasure topics).
INDEXED_TOPICS = (
    "telnyx.call.initiated",
    "telnyx.call.answered",
    "telnyx.call.hangup",
    "telnyx.call.transcription",
)
COMPLETED = "voicetap.transcript.completed"
# What tests/docker/compose.test.yaml may change of compose.yaml, service by service.
_HOSTED = {"network_mode", "networks", "ports", "healthcheck"}
OVERRIDDEN = {
    "redis": _HOSTED | {"image", "build", "command"},
    "gateway": _HOSTED | {"env_file", "environment", "build"},
    "ingest": _HOSTED | {"env_file", "environment", "build"},
    "indexer": _HOSTED | {"env_file", "environment", "build", "pid"},
    "postgres": {"network_mode", "networks", "image", "build", "environment"},
}
ADDRESSES = {
    "REDIS_URL", "TELNYX_BASE_URL", "GATEWAY_HOST", "GATEWAY_PORT", "INGEST_HOST", "INGEST_PORT",
    "INGEST_RTP_HOST", "INGEST_PUBLIC_HOST", "INGEST_PUBLIC_URL", "INDEXER_HOST", "INDEXER_PORT",
    "PGPORT",
}  # fmt: skip
USER = "10001:10001"  # deploy/Dockerfile's USER
# Prints what a runtime image must not hold: compilers, the build stage's uv, its sources, caches.
BUILD_TOOLS_PROBE = (
    'for tool in gcc cc c++ make ld as uv uvx; do command -v "$tool"; done; '
    "ls -d /src /root/.cache 2>/dev/null; "
    "python -c \"import importlib.util; print(importlib.util.find_spec('uv') or '', end='')\"; true"
)


@pytest.fixture
def stack_redis(stack: Stack) -> Iterator[Redis]:
    client = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def poll(what: str, found: Callable[[], Any], seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := found()):
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.5)
    return value


def every_check_passed(summary: dict[str, Any]) -> None:
    assert {c["name"]: c["status"] for c in summary["checks"]} == dict.fromkeys(CHECKS, "pass")


def assert_indexed_once(stack: Stack, stack_redis: Redis, summary: dict[str, Any]) -> None:
    """Each call's transcript holds each final line sent once, its completion is published once per
    revision, and the indexer's group has nothing left pending."""
    lines = {c["call_control_id"]: c["transcript_lines"] for c in summary["calls"]}
    assert len(lines) == summary["calls_asked"] and all(lines.values()), lines
    for call_control_id, count in lines.items():
        segments = stack.transcript(call_control_id)["segments"]
        assert len(segments) == count, (call_control_id, segments)
        assert len({(s["track"], s["text"], s["occurred_at"]) for s in segments}) == count

    def completed() -> list[str] | None:
        ids = [f["id"] for _, f in stack_redis.xrange(COMPLETED) if f["call_control_id"] in lines]
        announced = {i.split(":", 1)[1].rsplit(":", 1)[0] for i in ids}
        return ids if announced == set(lines) else None

    ids = poll("every call's transcript announced as completed", completed)
    assert len(ids) == len(set(ids)), f"a transcript revision announced twice: {sorted(ids)}"
    poll(
        f"the {GROUP} group has nothing pending",
        lambda: all(
            group["pending"] == 0
            for topic in INDEXED_TOPICS
            for group in stack_redis.xinfo_groups(topic)
            if group["name"] == GROUP
        ),
    )


def test_the_override_changes_only_the_network_the_addresses_and_the_base_image(
    stack: Stack,
) -> None:
    upstream = stack.config(files=(COMPOSE_FILE,))["services"]
    tested = stack.config()["services"]
    assert tested.keys() == upstream.keys()
    for name, service in upstream.items():
        changed = {k for k in service.keys() | tested[name].keys() if service.get(k) != tested[name].get(k)}  # fmt: skip
        assert changed <= OVERRIDDEN[name], (name, changed - OVERRIDDEN[name])
        if "build" in service:
            build = tested[name]["build"]
            assert {k: v for k, v in build.items() if k not in ("args", "network")} == service[
                "build"
            ]
            assert build["args"] == {"PYTHON_IMAGE": BASE_IMAGE}
        environment = tested[name].get("environment", {})
        moved = {k for k, v in environment.items() if service["environment"].get(k) != v}
        assert moved <= ADDRESSES, (name, moved - ADDRESSES)
    command = upstream["redis"]["command"]
    assert tested["redis"]["command"] == [*command, "--bind", "127.0.0.1", "--port", stack.env["VOICETAP_TEST_REDIS_PORT"]]  # fmt: skip


def test_every_service_is_ready_and_on_the_hosts_network_only(
    stack: Stack, stack_redis: Redis
) -> None:
    assert stack_redis.ping()
    for service in SERVICES:
        response = httpx.get(f"{stack.url(service)}/readyz", timeout=5)
        assert response.status_code == 200 and response.json()["ready"], response.text
    for service in ("redis", *SERVICES):
        [container] = stack.containers(service)
        assert container["State"]["Health"]["Status"] == "healthy", service
        assert container["HostConfig"]["NetworkMode"] == "host", service
        addresses = [n["IPAddress"] for n in container["NetworkSettings"]["Networks"].values()]
        assert not any(addresses), (service, addresses)


def test_the_images_run_as_their_non_root_user_and_hold_no_build_tools(stack: Stack) -> None:
    for service in SERVICES:
        [container] = stack.containers(service)
        image = container["Config"]["Image"]
        assert container["Config"]["User"] == USER, service
        with open(f"/proc/{container['State']['Pid']}/status") as status:
            uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
        assert uids == ["10001"] * 4, (service, uids)
        probe = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", BUILD_TOOLS_PROBE)  # fmt: skip
        assert probe == "", f"{image} holds build tools:\n{probe}"
    # The same probe finds uv in the build stage (cached from the build above), so it can fail.
    build_stage = "voicetap-test/build-stage:latest"
    subprocess.run(
        ["docker", "build", "--network", "host", "-f", "deploy/Dockerfile", "--target", "build",
         "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "-t", build_stage, "."],
        cwd=ROOT, env=stack.env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    try:
        probe = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", build_stage, "-c", BUILD_TOOLS_PROBE)  # fmt: skip
    finally:
        docker("rmi", build_stage)
    assert "/usr/local/bin/uv" in probe and "/src" in probe, probe


def test_simulated_calls_pass_every_check(stack: Stack, stack_redis: Redis) -> None:
    summary = stack.simulate("--calls", "5", "--duration", "10")
    every_check_passed(summary)
    assert_indexed_once(stack, stack_redis, summary)


def test_an_indexer_killed_mid_run_and_started_again_loses_and_doubles_nothing(
    stack: Stack, stack_redis: Redis
) -> None:
    spoken = stack_redis.xlen("telnyx.call.transcription")
    # The restarted indexer is a new consumer: what the killed one held is claimed once idle for
    # INDEXER_CLAIM_IDLE_MS (30 s), so the run waits long enough after its calls for that.
    command = stack.simulate_command("--calls", "5", "--duration", "10", "--settle", "75")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=stack.simulate_environment(),
    ) as run:  # fmt: skip
        poll(
            "the calls speaking",
            lambda: stack_redis.xlen("telnyx.call.transcription") >= spoken + 5,
        )
        [before] = stack.containers("indexer")
        stack.compose("kill", "-s", "KILL", "indexer")
        [killed] = stack.containers("indexer")
        assert not killed["State"]["Running"] and killed["State"]["ExitCode"] == 137
        time.sleep(2)  # the calls go on while no indexer runs
        stack.compose("up", "--detach", "indexer")
        wait_ready(stack.url("indexer"))
        [after] = stack.containers("indexer")
        assert after["State"]["Pid"] != before["State"]["Pid"]
        out, err = run.communicate(timeout=180)
    summary = parse_summary(run.returncode, out, err)
    every_check_passed(summary)
    assert_indexed_once(stack, stack_redis, summary)


def test_three_indexers_process_every_event_once(stack: Stack, stack_redis: Redis) -> None:
    scaled = dataclasses.replace(stack, env=stack.env | {"VOICETAP_TEST_INDEXER_PORT": "0"})
    try:
        scaled.compose("up", "--detach", "--scale", "indexer=3")
        urls = poll("three indexers listening", lambda: len(u := scaled.indexer_urls()) == 3 and u)
        for url in urls:
            wait_ready(url)
        summary = scaled.simulate("--calls", "5", "--duration", "10")
        every_check_passed(summary)
        assert_indexed_once(scaled, stack_redis, summary)
        pids = {c["State"]["Pid"] for c in scaled.containers("indexer") if c["State"]["Running"]}
        assert len(pids) == 3
        # Consumers are named hostname-pid-n; each replica's read entries of this run.
        readers = {
            int(consumer["name"].rsplit("-", 2)[-2])
            for topic in INDEXED_TOPICS
            for consumer in stack_redis.xinfo_consumers(topic, GROUP)
            if consumer["inactive"] != -1
        }
        assert pids <= readers, (pids, readers)
    finally:
        stack.compose("up", "--detach", "--scale", "indexer=1")
    wait_ready(stack.url("indexer"))


def test_the_indexer_stores_in_the_postgres_profiles_database(
    stack: Stack, stack_redis: Redis
) -> None:
    port = stack.env["VOICETAP_TEST_POSTGRES_PORT"]
    url = f"postgresql://voicetap:voicetap@127.0.0.1:{port}/voicetap"  # compose.yaml's defaults
    on_postgres = dataclasses.replace(stack, env=stack.env | {"INDEXER_DATABASE_URL": url})
    try:
        on_postgres.compose("--profile=postgres", "up", "--detach", "--wait", timeout=180)
        wait_ready(stack.url("indexer"))
        summary = on_postgres.simulate("--calls", "2", "--duration", "3")
        every_check_passed(summary)
        assert_indexed_once(on_postgres, stack_redis, summary)
        calls = ",".join(f"'{c['call_control_id']}'" for c in summary["calls"])
        stored = on_postgres.compose(
            "--profile=postgres", "exec", "-T", "postgres", "psql", "-U", "voicetap", "-d", "voicetap",
            "-tAc", f"SELECT count(*) FROM segments WHERE call_control_id IN ({calls})",
        )  # fmt: skip
        assert int(stored) == sum(c["transcript_lines"] for c in summary["calls"])
    finally:
        stack.compose("--profile=postgres", "rm", "--stop", "--force", "postgres")
        stack.compose("up", "--detach", "--wait", timeout=180)  # the indexer on SQLite again
    wait_ready(stack.url("indexer"))


def test_down_then_up_keeps_the_data(stack: Stack, stack_redis: Redis) -> None:
    summary = stack.simulate("--calls", "2", "--duration", "3")
    every_check_passed(summary)
    assert_indexed_once(stack, stack_redis, summary)

    def kept() -> dict[str, Any]:
        with httpx.Client(headers=stack.headers, timeout=10) as client:
            return {
                "topics": {t: stack_redis.xlen(t) for t in (*INDEXED_TOPICS, COMPLETED)},
                "transcripts": [
                    stack.transcript(c["call_control_id"])["segments"] for c in summary["calls"]
                ],
                "recordings": [
                    hashlib.sha256(
                        client.get(c["recording_url"]).raise_for_status().content
                    ).digest()
                    for c in summary["calls"]
                ],
            }

    before = kept()
    # The gateway's /data (the image's VOLUME) has no volume in compose.yaml: an anonymous one,
    # which `down` leaves and `up` does not take again.
    anonymous = [
        mount["Name"]
        for service in ("redis", *SERVICES)
        for container in stack.containers(service)
        for mount in container["Mounts"]
        if mount["Type"] == "volume" and not mount["Name"].startswith(f"{stack.project}_")
    ]
    stack.compose("down", timeout=180)
    assert stack.compose("ps", "--all", "--quiet") == ""
    if anonymous:
        docker("volume", "rm", *anonymous)
    stack.compose("up", "--detach", "--wait", timeout=180)
    for service in SERVICES:
        wait_ready(stack.url(service))
    assert kept() == before
