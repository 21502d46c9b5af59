"""The packages pass strict mypy (with the pydantic plugin, configured in pyproject.toml), so a
type error fails the suite as a lint error does. Plain `mypy` checks every package listed in
`[tool.mypy] files`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MYPY = Path(sys.executable).parent / "mypy"


def test_mypy_strict_finds_nothing() -> None:
    result = subprocess.run([str(MYPY)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
