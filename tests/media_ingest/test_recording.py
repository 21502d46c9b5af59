"""A whole call through the pure pipeline: RTP datagrams of two legs in, a stereo WAV out."""

from pathlib import Path

import numpy as np
import pytest

from media_ingest.protocol.codecs import g711_encode
from media_ingest.protocol.rtp import build_rtp, parse_rtp
from media_ingest.protocol.wav import read_wav
from media_ingest.recording.call_recording import CallRecording

ORIGIN = 1000.0
RATE = 8000


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(round(RATE * seconds)) / RATE
    return (6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def datagrams(
    pcm: np.ndarray, *, start: float, ssrc: int, seq0: int, ts0: int, pt: int = 0, law: str = "PCMU"
) -> list[tuple[float, bytes]]:
    """(send time, datagram) per 20 ms packet of ``pcm`` starting ``start`` s after the origin."""
    out = []
    for k in range(len(pcm) // 160):
        payload = g711_encode(pcm[k * 160 : (k + 1) * 160], law)  # type: ignore[arg-type]
        data = build_rtp(
            payload, payload_type=pt, sequence=seq0 + k, timestamp=ts0 + 160 * k, ssrc=ssrc
        )
        out.append((ORIGIN + start + 0.02 * k, data))
    return out


def play(
    recording: CallRecording, schedule: list[tuple[float, str, bytes]], end: float
) -> list[dict]:
    """Deliver datagrams in arrival order, ticking once a second like the glue would."""
    windows: list[dict] = []
    next_tick = ORIGIN + 1.0
    for arrival, track, data in sorted(schedule, key=lambda item: item[0]):
        while arrival >= next_tick:
            windows += recording.tick(next_tick)[1]
            next_tick += 1.0
        recording.leg(track).push(parse_rtp(data), arrival)  # type: ignore[arg-type]
    summary = recording.finish(end)
    return windows + summary.pop("windows") + [summary]


def test_impaired_two_leg_call_is_aligned_on_the_wall_clock(tmp_path: Path) -> None:
    caller = tone(3.0, 400)
    agent = tone(1.5, 1000)
    inbound = datagrams(caller, start=0.2, ssrc=11, seq0=65500, ts0=2**32 - 8000)
    # the outbound leg starts 1 s into the call and changes SSRC half way (transfer)
    outbound = datagrams(agent[:6000], start=1.0, ssrc=21, seq0=100, ts0=5)
    outbound += datagrams(
        agent[6000:], start=1.75, ssrc=22, seq0=9000, ts0=777777, law="PCMA", pt=8
    )
    schedule: list[tuple[float, str, bytes]] = []
    for k, (sent, data) in enumerate(inbound):
        if k == 40:
            continue  # lost
        delay = 0.045 if k % 25 == 3 else 0.005  # some packets overtaken by the next ones
        schedule.append((sent + delay, "inbound", data))
        if k % 30 == 7:
            schedule.append((sent + 0.01, "inbound", data))  # duplicate
    schedule += [(sent + 0.005, "outbound", data) for sent, data in outbound]
    path = tmp_path / "call.wav"
    recording = CallRecording(path, origin=ORIGIN, sample_rate=RATE, holdback=0.5)
    *windows, summary = play(recording, schedule, end=ORIGIN + 4.0)

    rate, frames = read_wav(path)
    assert rate == RATE and len(frames) == 4 * RATE and summary["duration"] == 4.0
    left, right = frames[:, 0].astype(int), frames[:, 1].astype(int)
    # caller audio starts at its arrival (0.205 s), agent audio at 1.005 s: silence before
    assert not left[: int(0.2 * RATE)].any() and not right[:RATE].any()
    first_left, first_right = round(0.205 * RATE), round(1.005 * RATE)
    assert int(np.flatnonzero(left)[0]) == first_left + 1  # the tone starts with sin(0) = 0
    assert int(np.flatnonzero(right)[0]) == first_right + 1
    # the lost packet is 20 ms of silence at its place; everything else is the caller's tone
    lost = first_left + 40 * 160
    assert not left[lost : lost + 160].any()
    received = np.delete(np.arange(len(caller)), np.arange(40 * 160, 41 * 160))
    decoded = left[first_left : first_left + len(caller)]
    assert np.corrcoef(decoded[received], caller[received])[0, 1] > 0.99
    # after the SSRC change the agent continues at its arrival time, in the other G.711 law
    second = int(1.755 * RATE)
    assert np.corrcoef(right[second : second + 6000], agent[6000:])[0, 1] > 0.99
    assert not right[int(2.6 * RATE) :].any() and not left[int(3.3 * RATE) :].any()

    legs = summary["legs"]
    assert legs["inbound"]["lost"] == 1 and legs["inbound"]["duplicated"] == 5
    assert legs["inbound"]["reordered"] >= 5 and legs["inbound"]["codec"] == "PCMU"
    assert legs["outbound"]["ssrc_changes"] == 1 and legs["outbound"]["codec"] == "PCMA"
    assert summary["channels"] == {"left": "inbound", "right": "outbound"}
    assert [w["end"] for w in windows] == [1.0, 2.0, 3.0, 4.0]
    assert windows[0]["inbound"]["talk"] >= 0.78 and windows[0]["outbound"]["talk"] == 0.0
    assert windows[1]["overtalk"] == pytest.approx(1.0, abs=0.05)
    assert summary["analytics"]["outbound"]["talk"] == pytest.approx(1.5 + 0.2, abs=0.05)


def test_call_without_media_still_gets_a_silent_recording(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    summary = CallRecording(path, origin=ORIGIN).finish(ORIGIN + 2.5)
    rate, frames = read_wav(path)
    assert frames.shape == (20000, 2) and not frames.any() and summary["duration"] == 2.5


def test_pause_silences_both_legs_and_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "paused.wav"
    recording = CallRecording(path, origin=ORIGIN, holdback=0.2)
    schedule = [
        (t, track, d)
        for track, freq, ssrc in (("inbound", 300, 1), ("outbound", 500, 2))
        for t, d in datagrams(tone(2.0, freq), start=0.0, ssrc=ssrc, seq0=0, ts0=0)
    ]
    for arrival, track, data in sorted(schedule, key=lambda item: item[0]):
        if arrival >= ORIGIN + 0.5 and not recording.mixer.paused and arrival < ORIGIN + 1.0:
            recording.pause(ORIGIN + 0.5)
        if arrival >= ORIGIN + 1.0 and recording.mixer.paused:
            recording.resume(ORIGIN + 1.0)
        recording.leg(track).push(parse_rtp(data), arrival)  # type: ignore[arg-type]
        recording.tick(arrival)
    summary = recording.finish(ORIGIN + 2.0)
    _, frames = read_wav(path)
    assert summary["paused"] == [[0.5, 1.0]]
    assert not frames[4000:8000].any()
    assert frames[100:3900].any(axis=0).all() and frames[8100:15900].any(axis=0).all()


def test_a_stop_never_silences_audio_received_before_it(tmp_path: Path) -> None:
    """Media that ran a little ahead of the wall clock (its last packet placed past the stop
    time, some of it still in the jitter buffer) is kept whole; the pause starts after it."""
    path = tmp_path / "stopped.wav"
    recording = CallRecording(path, origin=ORIGIN, holdback=0.2)
    caller = tone(1.0, 300)
    for sent, data in datagrams(caller, start=0.0, ssrc=1, seq0=0, ts0=0):
        recording.inbound.push(parse_rtp(data), sent)
    stopped = ORIGIN + 0.99  # the stream ended before the wall clock reached its last sample
    recording.pause(stopped)
    recording.resume(ORIGIN + 1.5)
    summary = recording.finish(ORIGIN + 2.0)
    _, frames = read_wav(path)
    [[pause_start, pause_end]] = summary["paused"]
    assert pause_start == pytest.approx(1.0, abs=0.001) and pause_end == 1.5
    decoded = frames[: len(caller), 0].astype(int)
    assert decoded[-160:].any() and np.corrcoef(decoded, caller)[0, 1] > 0.99


def test_a_stop_applied_long_after_it_happened_is_paused_from_the_stop(tmp_path: Path) -> None:
    """A fork stopped and never resumed is paused when the call finishes (see ``calls.finish``),
    long after the mixer has read past the stop: the pause still starts there, not at the read
    position."""
    recording = CallRecording(tmp_path / "late.wav", origin=ORIGIN)
    for sent, data in datagrams(tone(1.0, 300), start=0.0, ssrc=1, seq0=0, ts0=0):
        recording.inbound.push(parse_rtp(data), sent)
    for second in range(2, 11):
        recording.tick(ORIGIN + second)
    recording.pause(ORIGIN + 1.2)
    assert recording.finish(ORIGIN + 10.0)["paused"] == [[1.2, 10.0]]


def test_unknown_payload_types_are_counted_not_fatal(tmp_path: Path) -> None:
    recording = CallRecording(None, origin=ORIGIN)
    for k in range(3):
        data = build_rtp(b"\x00" * 20, payload_type=18, sequence=k, timestamp=160 * k, ssrc=1)
        recording.inbound.push(parse_rtp(data), ORIGIN + 0.02 * k)
    summary = recording.finish(ORIGIN + 1.0)
    inbound = summary["legs"]["inbound"]
    assert inbound["unsupported"] == 3 and inbound["lost"] == 0
    assert summary["path"] is None and summary["duration"] == 1.0
