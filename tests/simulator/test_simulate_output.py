"""`voicetap simulate` for a newcomer: progress that moves while calls play, and a call longer than
its audio that loops the audio (and its timed script) instead of sending digital silence."""

import asyncio
import io

import numpy as np

from telnyx_simulator.audio import SAMPLE_RATE, CallAudio
from telnyx_simulator.progress import Snapshot, show_progress
from telnyx_simulator.script import ScriptLine, looped_script


async def test_the_progress_line_moves_while_audio_is_sent() -> None:
    sent = {"packets": 0}

    def snapshot() -> Snapshot:
        sent["packets"] += 50
        return Snapshot(0.5, 0, 1, 1, 2, 2, sent["packets"], sent["packets"] / 2 * 0.02)

    stream = io.StringIO()
    task = asyncio.create_task(show_progress(snapshot, stream=stream, interactive=True))
    await asyncio.sleep(0.7)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    drawn = [line for line in stream.getvalue().split("\r") if line]
    assert len(drawn) >= 2
    assert (
        "0/1 calls done, 1 playing, 0.5 s of audio sent (50 packets), 2/2 webhooks accepted"
        in (drawn[0])
    )
    assert "1.0 s of audio sent (100 packets)" in drawn[1]


def test_a_call_longer_than_its_audio_loops_it_instead_of_silence() -> None:
    audio = CallAudio.tones(2.0)
    looped = audio.looped(5.0)
    assert len(looped.inbound) == len(looped.outbound) == 5 * SAMPLE_RATE
    second = 2 * SAMPLE_RATE
    assert np.array_equal(looped.inbound[second : 2 * second], audio.inbound)
    assert np.array_equal(looped.outbound[2 * second :], audio.outbound[:SAMPLE_RATE])
    assert np.count_nonzero(looped.inbound[-SAMPLE_RATE:]) > SAMPLE_RATE // 2, "not silence"
    assert audio.looped(1.5) is audio, "a call shorter than its audio plays it once"


def test_timed_script_lines_are_repeated_with_the_audio() -> None:
    lines = [ScriptLine("outbound", "hello", 0.3, 1.0), ScriptLine("inbound", "my order", 1.2, 1.8)]
    assert looped_script(lines, 2.0, 5.0) == [
        *lines,
        ScriptLine("outbound", "hello", 2.3, 3.0),
        ScriptLine("inbound", "my order", 3.2, 3.8),
        ScriptLine("outbound", "hello", 4.3, 5.0),
    ]  # the last pass's second line would start after the call ended
    untimed = [ScriptLine("inbound", "spread over the call")]
    assert looped_script(untimed, 2.0, 5.0) == untimed
