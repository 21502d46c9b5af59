"""``voicetap gateway`` without a key to verify webhooks: one line, exit 2, no traceback."""

import os
import subprocess
import sys
from pathlib import Path


def test_no_public_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "TELNYX_"))}
    done = subprocess.run(
        [sys.executable, "-m", "webhook_gateway"],
        env={**env, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"},
        cwd=tmp_path,  # no .env file here
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("voicetap gateway: invalid setting TELNYX_PUBLIC_KEY is not set")
    assert done.stderr.count("\n") == 1
    assert "hunter2" not in done.stderr
