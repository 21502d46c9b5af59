"""Regenerate the README's settings and topics tables from the code.

    .venv/bin/python -m docs.generate_readme_tables          # rewrite README.md in place
    .venv/bin/python -m docs.generate_readme_tables --check  # exit 1 when README.md is stale

The tables sit between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``.
"""

import importlib
import re
import sys
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from docs.catalog import all_topics

README = Path(__file__).resolve().parent.parent / "README.md"

# (settings class, who reads it) in the order the table shows them.
SETTINGS = [
    ("voicetap_common.settings:CommonSettings", "every service"),
    ("webhook_gateway.settings:GatewaySettings", "gateway"),
    ("voicetap_cli.settings:CliSettings", "`voicetap up` and the CLI"),
    ("voicetap_common.call_control:TelnyxApiSettings", "ingest, indexer (Call Control)"),
    ("voicetap_common.recordings_settings:RecordingsStoreSettings", "ingest, indexer (recordings)"),
    ("media_ingest.settings:IngestSettings", "ingest"),
    ("transcript_indexer.settings:IndexerSettings", "indexer"),
    ("voicetap_console.settings:ConsoleSettings", "console"),
]


def _load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    model: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return model


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    rows = ["| variable | default | used by | meaning |", "| --- | --- | --- | --- |"]
    seen: set[str] = set()
    for path, used_by in SETTINGS:
        for name, field in _load(path).model_fields.items():
            env = name.upper()
            if env in seen:
                continue
            seen.add(env)
            meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| `{env}` | {_default(field)} | {used_by} | {meaning} |")
    return "\n".join(rows)


def topics_table() -> str:
    rows = [
        "| topic | written by | read by (groups) | partitioned | holds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for topic in all_topics():
        readers = ", ".join(f"`{g}`" for g in topic.read_by) or "any subscriber"
        partitioned = "yes" if topic.partitioned else "no"
        rows.append(
            f"| `{topic.name}` | {topic.written_by} | {readers} | {partitioned} | {topic.summary} |"
        )
    return "\n".join(rows)


def render(text: str) -> str:
    for name, table in (("settings", settings_table()), ("topics", topics_table())):
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n)(?:.*?\n)?(<!-- END GENERATED: {name} -->)", re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"README.md has no generated block {name!r}")

        def filled(match: re.Match[str], table: str = table) -> str:
            return match.group(1) + table + "\n" + match.group(2)

        text = pattern.sub(filled, text)
    return text


def main() -> None:
    current = README.read_text()
    fresh = render(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            sys.exit(
                "README.md tables are stale: run `.venv/bin/python -m docs.generate_readme_tables`"
            )
        return
    README.write_text(fresh)


if __name__ == "__main__":
    main()
