"""The README's settings and topic tables are generated from the code, and current."""

from pathlib import Path

from docs.generate_readme_tables import render

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_are_current() -> None:
    current = (ROOT / "README.md").read_text()
    assert render(current) == current, (
        "README.md tables are stale: run `.venv/bin/python -m docs.generate_readme_tables`"
    )
