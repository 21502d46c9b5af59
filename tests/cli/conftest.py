"""A whole stack's environment for `voicetap up` tests: its own data directory and free ports."""

import os
from pathlib import Path

import pytest

from voicetap_cli.embedded_redis import free_port


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
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
