"""``voicetap ingest`` refuses a bad setting with one line naming it, and exit status 2."""

import subprocess
import sys
from pathlib import Path


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "media_ingest.main"],
        env={
            "PATH": "/usr/bin:/bin",
            "VOICETAP_DATA_DIR": str(tmp_path),
            "INGEST_RTP_PORTS": "5-4",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "INGEST_RTP_PORTS" in lines[0] and "5-4" in lines[0], lines
    assert lines[0].startswith("voicetap ingest: invalid setting"), lines
