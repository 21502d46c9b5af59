"""Call scripts: what each side says, in order, one line each.

A script file holds lines such as ``inbound: I'd like to check my order`` (the caller) or
``outbound: Sure, what is the number?`` (the other side); a line without a prefix is inbound;
blank lines and lines starting with ``#`` are skipped.

A line may start with when it is said, in seconds since the answer: ``[2.29-4.27] inbound: …``
(start and end) or ``[2.29] inbound: …`` (start only). The call player then sends the line's
final transcription when it ends, as a live engine does, instead of spreading the lines evenly.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from telnyx_simulator.audio import Track

_PREFIXES: dict[str, Track] = {"inbound:": "inbound", "outbound:": "outbound"}
_TIMES = re.compile(r"^\[\s*(?P<start>\d+(?:\.\d+)?)\s*(?:-\s*(?P<end>\d+(?:\.\d+)?)\s*)?\]\s*")


@dataclass(frozen=True, slots=True)
class ScriptLine:
    track: Track
    text: str
    start: float | None = None  # seconds since the answer, when the script says
    end: float | None = None


def parse_script(text: str) -> list[ScriptLine]:
    lines: list[ScriptLine] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        start = end = None
        if times := _TIMES.match(line):
            start = float(times["start"])
            end = float(times["end"]) if times["end"] is not None else None
            if end is not None and end < start:
                raise ValueError(f"script line {number}: ends ({end}) before it starts ({start})")
            line = line[times.end() :]
        track: Track = "inbound"
        for prefix, prefix_track in _PREFIXES.items():
            if line.lower().startswith(prefix):
                track, line = prefix_track, line[len(prefix) :].strip()
                break
        if line:
            lines.append(ScriptLine(track, line, start, end))
    return lines


def looped_script(lines: list[ScriptLine], period: float, seconds: float) -> list[ScriptLine]:
    """The lines of audio ``period`` seconds long, repeated as the audio is looped to last
    ``seconds``: each pass's timed lines shifted by the pass's start. Untimed lines are spread
    over the whole call anyway, so they are not repeated."""
    if period <= 0 or not any(line.start is not None for line in lines):
        return lines
    looped = list(lines)
    offset = period
    while offset < seconds:
        looped += [
            ScriptLine(
                line.track,
                line.text,
                line.start + offset,
                None if line.end is None else line.end + offset,
            )
            for line in lines
            if line.start is not None and line.start + offset < seconds
        ]
        offset += period
    return looped


def load_script(path: str | Path) -> list[ScriptLine]:
    return parse_script(Path(path).read_text(encoding="utf-8"))
