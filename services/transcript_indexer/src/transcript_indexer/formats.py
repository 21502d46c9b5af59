"""A transcript as JSON, plain text, WebVTT or SubRip: pure code, no I/O.

Telnyx says when a result was produced (``occurred_at``, about the end of the utterance), not
when the speech began, so a subtitle cue ends at the segment's time and starts a reading time
earlier (0.4 s a word, 1 to 8 s), never before the previous cue of the same track ended. Cue
times count from the answer (else the first known moment of the call).
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from transcript_indexer.records import Segment
from transcript_indexer.storage.base import Transcript

SECONDS_PER_WORD = 0.4
MIN_CUE_SECONDS = 1.0
MAX_CUE_SECONDS = 8.0


def as_json(transcript: Transcript) -> dict[str, object]:
    return {
        "call": transcript.call.as_json(),
        "segments": [s.as_json() for s in transcript.segments],
        "partials": [p.as_json() for p in transcript.partials],
        "text": as_text(transcript),
    }


def _speaker(segment: Segment) -> str:
    return segment.track or "speaker"


def as_text(transcript: Transcript) -> str:
    """One line per segment, ``track: text``; the speaker label only when the engine gave one."""
    lines = [f"{s.track}: {s.text}" if s.track else s.text for s in transcript.segments]
    return "\n".join(lines) + ("\n" if lines else "")


def _cues(transcript: Transcript) -> list[tuple[float, float, Segment]]:
    call = transcript.call
    origin = call.answered_at or call.initiated_at or call.start_time
    if origin is None and transcript.segments:
        first = transcript.segments[0]
        origin = first.occurred_at - timedelta(seconds=_reading_time(first.text))
    cues: list[tuple[float, float, Segment]] = []
    ended: dict[str, float] = {}
    for segment in transcript.segments:
        end = max(0.0, _seconds(segment.occurred_at, origin))
        start = max(end - _reading_time(segment.text), ended.get(segment.track, 0.0), 0.0)
        if start >= end:
            end = start + MIN_CUE_SECONDS / 2
        ended[segment.track] = end
        cues.append((start, end, segment))
    return cues


def _reading_time(text: str) -> float:
    return min(MAX_CUE_SECONDS, max(MIN_CUE_SECONDS, SECONDS_PER_WORD * len(text.split())))


def _seconds(moment: datetime, origin: datetime | None) -> float:
    return 0.0 if origin is None else (moment - origin).total_seconds()


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    """A cue's text on one line, with nothing that could end the cue or open a tag."""
    return " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for index, (start, end, segment) in enumerate(_cues(transcript), 1):
        blocks.append(
            f"{index}\n{_clock(start, '.')} --> {_clock(end, '.')}\n<v {_speaker(segment)}>{_cue_text(segment.text)}\n"
        )
    return "\n".join(blocks)


def as_srt(transcript: Transcript) -> str:
    blocks = []
    for index, (start, end, segment) in enumerate(_cues(transcript), 1):
        label = f"{segment.track}: " if segment.track else ""
        text = " ".join(segment.text.split())
        blocks.append(f"{index}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{label}{text}\n")
    return "\n".join(blocks)


RENDERERS: dict[str, tuple[str, Callable[[Transcript], str]]] = {
    "txt": ("text/plain; charset=utf-8", as_text),
    "vtt": ("text/vtt; charset=utf-8", as_vtt),
    "srt": ("application/x-subrip; charset=utf-8", as_srt),
}
