"""One compose stack for the docker tests: images built from deploy/Dockerfile on the locally made
base image, brought up once, played against by every test, taken down with its volumes at the end."""

import json
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from telnyx_simulator.signing import WebhookSigner
from tests.system_parts import missing

from .stack import (
    BASE_IMAGE,
    BASE_IMAGE_SCRIPT,
    COLD_BUILD_SECONDS,
    RTP_PORTS,
    Stack,
    engine_answers,
    engine_environment,
    free_ports,
    free_udp_range,
    tool_missing,
    wait_ready,
)

API_KEY = "KEYdocker_test"


@pytest.fixture(scope="module")  # down before the rest of the suite goes on
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not engine_answers():
        missing(
            "a Docker engine",
            "`docker info` fails (.ci/run starts one: dockerd --bridge=none --iptables=false)",
        )
    if (tool := tool_missing()) is not None:
        missing(tool, "the docker tests build and run the compose stack with it")
    subprocess.run(
        [str(BASE_IMAGE_SCRIPT), BASE_IMAGE], check=True, timeout=600, env=engine_environment()
    )

    directory = tmp_path_factory.mktemp("compose")
    signer = WebhookSigner.generate()
    keys_file = directory / "dev-webhook-keys.json"
    keys = {"private_key": signer.private_key, "public_key": signer.public_key, "api_key": API_KEY}
    keys_file.write_text(
        json.dumps(keys)
    )  # as `voicetap up` writes it: the simulator signs with it
    redis, gateway, ingest, indexer, postgres, api = free_ports(6)
    token = secrets.token_hex(16)
    env = engine_environment() | {
        "VOICETAP_TEST_REDIS_PORT": str(redis),
        "VOICETAP_TEST_GATEWAY_PORT": str(gateway),
        "VOICETAP_TEST_INGEST_PORT": str(ingest),
        "VOICETAP_TEST_INDEXER_PORT": str(indexer),
        "VOICETAP_TEST_POSTGRES_PORT": str(postgres),
        "VOICETAP_TEST_API_PORT": str(api),
        "INGEST_RTP_PORTS": free_udp_range(RTP_PORTS),
        "VOICETAP_API_TOKEN": token,
        "TELNYX_PUBLIC_KEY": signer.public_key,
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"http://127.0.0.1:{api}/v2",  # the fake API `voicetap simulate` serves
    }
    project = f"voicetap-test-{secrets.token_hex(4)}"
    found = Stack(project, env, keys_file, token, directory / "simulator")
    found.data_dir.mkdir()
    found.compose("--profile=postgres", "build", timeout=COLD_BUILD_SECONDS)
    try:
        found.compose("up", "--detach", "--wait", timeout=180)
        for service in ("gateway", "ingest", "indexer"):
            wait_ready(found.url(service))
        yield found
    finally:
        found.compose("--profile=postgres", "down", "--volumes", "--remove-orphans", timeout=180)
