"""Where a transcript line sits on the recording's timeline: pure code, no I/O.

Telnyx says when a result was produced (``occurred_at``, about the end of the utterance), not when
the speech began; as the indexer's subtitle export does, a line starts a reading time earlier
(0.4 s a word, 1 to 8 s) and never before the previous line of the same track ended. Seconds count
from the recording's second 0 (the board's origin of the call).
"""

from datetime import datetime
from typing import Any

from voicetap_console.board import parse_time

SECONDS_PER_WORD = 0.4
MIN_LINE_SECONDS = 1.0
MAX_LINE_SECONDS = 8.0


def reading_time(text: str) -> float:
    return min(MAX_LINE_SECONDS, max(MIN_LINE_SECONDS, SECONDS_PER_WORD * len(text.split())))


def line_span(
    occurred_at: datetime | None, text: str, origin: datetime | None, track_ended: float = 0.0
) -> tuple[float, float]:
    """(start, end) in seconds of the recording for one line."""
    if occurred_at is None or origin is None:
        return track_ended, track_ended
    end = max(0.0, (occurred_at - origin).total_seconds())
    start = max(end - reading_time(text), track_ended, 0.0)
    return round(start, 3), round(max(end, start), 3)


def timed_segments(segments: list[dict[str, Any]], origin: datetime | None) -> list[dict[str, Any]]:
    """The indexer's segments (in time order), each with its ``start`` and ``end``."""
    ended: dict[str | None, float] = {}
    timed = []
    for segment in segments:
        track = segment.get("track")
        start, end = line_span(
            parse_time(segment.get("occurred_at")),
            str(segment.get("text") or ""),
            origin,
            ended.get(track, 0.0),
        )
        ended[track] = end
        timed.append({**segment, "start": start, "end": end})
    return timed
