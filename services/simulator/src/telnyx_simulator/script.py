"""Call scripts: what each side says, in order, one line each.

A script file holds lines such as ``inbound: I'd like to check my order`` (the caller) or
``outbound: Sure, what is the number?`` (the other side); a line without a prefix is inbound;
blank lines and lines starting with ``#`` are skipped.
"""

from dataclasses import dataclass
from pathlib import Path

from telnyx_simulator.audio import Track

_PREFIXES: dict[str, Track] = {"inbound:": "inbound", "outbound:": "outbound"}


@dataclass(frozen=True, slots=True)
class ScriptLine:
    track: Track
    text: str


def parse_script(text: str) -> list[ScriptLine]:
    lines: list[ScriptLine] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        track: Track = "inbound"
        for prefix, prefix_track in _PREFIXES.items():
            if line.lower().startswith(prefix):
                track, line = prefix_track, line[len(prefix) :].strip()
                break
        if line:
            lines.append(ScriptLine(track, line))
    return lines


def load_script(path: str | Path) -> list[ScriptLine]:
    return parse_script(Path(path).read_text(encoding="utf-8"))
