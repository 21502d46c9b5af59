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


def _ingest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "media_ingest.main"],
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "CRITICAL", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_recordings_url_of_another_kind_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _ingest(
        {"VOICETAP_DATA_DIR": str(tmp_path), "VOICETAP_RECORDINGS_URL": "https://bucket/x"}
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "voicetap ingest: invalid setting VOICETAP_RECORDINGS_URL='https://bucket/x'"
    )
    assert "file:///absolute/directory or s3://bucket[/prefix]" in line


def test_a_recordings_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = _ingest(
        {
            "VOICETAP_DATA_DIR": str(tmp_path),
            "VOICETAP_RECORDINGS_URL": f"file://{tmp_path}/file/recordings",
            "INGEST_HOST": "127.0.0.1",  # else the start stops earlier: no token beyond loopback
        }
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("voicetap ingest: VOICETAP_RECORDINGS_URL cannot be used:"), line
