"""Where transcript lines sit on the recording: pure code."""

from datetime import UTC, datetime, timedelta

from voicetap_console.timing import line_span, timed_segments

ORIGIN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (ORIGIN + timedelta(seconds=seconds)).isoformat()


def test_a_line_starts_a_reading_time_before_its_result() -> None:
    # five words: 2 s of reading before the result at 10 s
    assert line_span(ORIGIN + timedelta(seconds=10), "one two three four five", ORIGIN) == (
        8.0,
        10.0,
    )
    # short and long lines are bounded (1 s, 8 s), and never before the recording
    assert line_span(ORIGIN + timedelta(seconds=10), "yes", ORIGIN) == (9.0, 10.0)
    assert line_span(ORIGIN + timedelta(seconds=30), "w " * 40, ORIGIN) == (22.0, 30.0)
    assert line_span(ORIGIN + timedelta(seconds=0.5), "one two three", ORIGIN) == (0.0, 0.5)


def test_lines_of_a_track_do_not_overlap_but_tracks_may() -> None:
    timed = timed_segments(
        [
            {"id": "a", "track": "inbound", "text": "one two three four", "occurred_at": at(4)},
            {"id": "b", "track": "inbound", "text": "five six seven eight", "occurred_at": at(5)},
            {"id": "c", "track": "outbound", "text": "nine ten", "occurred_at": at(4.5)},
        ],
        ORIGIN,
    )
    assert [(s["id"], s["start"], s["end"]) for s in timed] == [
        ("a", 2.4, 4.0),
        ("b", 4.0, 5.0),
        ("c", 3.5, 4.5),
    ]


def test_without_an_origin_lines_sit_at_zero() -> None:
    assert (
        timed_segments([{"id": "a", "text": "hi", "occurred_at": at(3)}], None)[0]["start"] == 0.0
    )
