"""``voicetap indexer`` with a bad setting: one line naming it, exit 2, no traceback, nothing served."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INDEXER_", "TELNYX_"))}
    return subprocess.run(
        [sys.executable, "-m", "transcript_indexer"],
        env={**clean, **env},
        cwd=tmp_path,  # no .env file here
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"INDEXER_DATABASE_URL": "mysql://db/transcripts"},
            "voicetap indexer: invalid setting INDEXER_DATABASE_URL='mysql://db/transcripts': "
            "must be postgresql://... or sqlite:///..., not 'mysql://db/transcripts'",
        ),
        (
            {"INDEXER_AUTO_TRANSCRIBE": "true", "INDEXER_API_TOKEN": "s3cret-token"},
            "voicetap indexer: invalid setting "
            "INDEXER_AUTO_TRANSCRIBE needs TELNYX_API_KEY (set the key, or turn it off)",
        ),
    ],
    ids=["database-url", "auto-transcribe-without-key"],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    done = _start(tmp_path, **env)
    assert done.returncode == 2, done.stderr
    assert done.stderr == line + "\n"
    assert "s3cret-token" not in done.stderr
