"""Transcript formats: plain text, WebVTT and SubRip from stored segments."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from transcript_indexer.formats import as_json, as_srt, as_text, as_vtt
from transcript_indexer.records import Segment
from transcript_indexer.storage.base import CallInfo, Transcript

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _call(answered: datetime | None) -> CallInfo:
    return CallInfo(
        "c1",
        None,
        None,
        "+1",
        "+2",
        "incoming",
        "hangup",
        T0,
        None,
        T0,
        answered,
        None,
        None,
        None,
        None,
        None,
    )


def _segment(n: int, seconds: float, text: str, track: str = "inbound") -> Segment:
    return Segment(f"e{n}", "c1", T0 + timedelta(seconds=seconds), track, text, 0.9)


def _transcript(answered: datetime | None = T0) -> Transcript:
    return Transcript(
        _call(answered),
        [
            _segment(1, 3.0, "Hello, thanks for calling."),
            _segment(2, 5.0, "Hi <there> & welcome", "outbound"),
            _segment(
                3,
                3661.5,
                "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty twenty-one",
            ),
        ],
        [_segment(4, 3662.0, "and then")],
    )


def test_text_has_one_line_per_segment_with_its_speaker() -> None:
    assert as_text(_transcript()).splitlines()[:2] == [
        "inbound: Hello, thanks for calling.",
        "outbound: Hi <there> & welcome",
    ]


def test_vtt_cues_end_at_the_segment_and_escape_markup() -> None:
    vtt = as_vtt(_transcript())
    assert vtt.startswith(
        "WEBVTT\n\n1\n00:00:01.400 --> 00:00:03.000\n<v inbound>Hello, thanks for calling.\n"
    )
    assert "00:00:03.400 --> 00:00:05.000\n<v outbound>Hi &lt;there&gt; &amp; welcome\n" in vtt
    assert "01:01:01.500" in vtt and "00:59:53.500" not in vtt  # long cues capped at 8 s
    assert "3\n01:00:53.500 --> 01:01:01.500\n" in vtt


def test_srt_numbers_cues_with_comma_milliseconds() -> None:
    srt = as_srt(_transcript())
    assert srt.startswith(
        "1\n00:00:01,400 --> 00:00:03,000\ninbound: Hello, thanks for calling.\n\n2\n"
    )
    assert srt.count(" --> ") == 3


def test_without_answer_times_count_from_the_first_segment() -> None:
    transcript = _transcript(answered=None)
    transcript = replace(transcript, call=replace(transcript.call, initiated_at=None))
    assert as_vtt(transcript).split("\n")[3] == "00:00:00.000 --> 00:00:01.600"


def test_json_holds_call_segments_partials_and_text() -> None:
    document = as_json(_transcript())
    assert [s["id"] for s in document["segments"]] == ["e1", "e2", "e3"]  # type: ignore[index]
    assert document["partials"][0]["text"] == "and then"  # type: ignore[index]
    assert document["call"]["call_control_id"] == "c1"  # type: ignore[index]
