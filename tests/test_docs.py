"""The README's settings and topic tables are generated from the code, and current."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_are_current() -> None:
    generator = runpy.run_path(str(ROOT / "docs" / "generate_readme_tables.py"))
    current = (ROOT / "README.md").read_text()
    assert generator["render"](current) == current, (
        "README.md tables are stale: run `.venv/bin/python docs/generate_readme_tables.py`"
    )
