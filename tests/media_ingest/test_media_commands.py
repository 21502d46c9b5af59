"""Media commands from ``voicetap.command.media`` to the fake Telnyx API (through the real SDK) and
the result topic; pause and resume; switching between fork and stream; a late fork.stopped; the
paused timeout; routing between two instances; ports exhausted."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from media_ingest.keys import owner_key
from media_ingest.protocol.wav import read_wav
from media_ingest.tokens import token_digest
from telnyx_simulator.audio import CallAudio
from tests.media_ingest.harness import (
    API_KEY,
    ingest_settings,
    locate,
    noise,
    publish_command,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip, send_fork
from tests.media_ingest.test_streaming import AUTH, open_stream, stop_stream, stream_audio, ws_url
from voicetap_sdk import codec
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry
from voicetap_sdk.topics import CALL_HANGUP, MEDIA_COMMANDS, MEDIA_ERROR

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it


async def test_each_media_command_reaches_the_api_and_the_result_topic(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    settings = ingest_settings(
        tmp_path, redis_url, fake.url, ingest_public_url="ws://127.0.0.1:8001"
    )
    async with running(settings) as (service, _):
        started = await run_command(redis, "fork_start", ccid, correlation_id="c-1")
        assert (
            started["ok"]
            and started["correlation_id"] == "c-1"
            and started["action"] == "fork_start"
        )
        assert started["executed_by"] == f"media_ingest:{service.instance}"
        [request] = fake.state.requests_for(ccid, "fork_start")
        assert request.path == f"/v2/calls/{ccid}/actions/fork_start"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert (
            request.body["command_id"]
            == started["telnyx_command_id"]
            == f"voicetap:fork_start:{started['command_id']}:{target_port(request.body['rx'])}"
        )
        assert (
            request.body["rx"] == started["allocated"]["rx"]
            and request.body["tx"] == started["allocated"]["tx"]
        )
        assert service.allocator.in_use == 1

        stopped = await run_command(redis, "fork_stop", ccid)
        assert stopped["ok"]
        [request] = fake.state.requests_for(ccid, "fork_stop")
        assert request.body == {
            "stream_type": "decrypted",
            "command_id": f"voicetap:fork_stop:{stopped['command_id']}",
        }
        await wait_for(lambda: _true(service.allocator.in_use == 0), 3, "ports released")

        streaming = await run_command(redis, "streaming_start", ccid)
        assert streaming["ok"], streaming
        [request] = fake.state.requests_for(ccid, "streaming_start")
        assert (
            request.body["stream_url"]
            == "ws://127.0.0.1:8001/streams/telnyx"
            == streaming["allocated"]["stream_url"]
        )
        assert (
            len(request.body["stream_auth_token"]) >= 32
            and request.body["stream_auth_token"] not in codec.dumps(streaming).decode()
        )
        assert (
            request.body["stream_track"] == "both_tracks" and request.body["stream_codec"] == "PCMU"
        )
        assert (
            request.body["stream_bidirectional_mode"] == "rtp"
            and request.body["stream_bidirectional_codec"] == "PCMU"
        )
        # the token's digest in it: a re-execution with a new token is not a repeat
        digest = token_digest(request.body["stream_auth_token"])[:12]
        assert (
            request.body["command_id"]
            == streaming["telnyx_command_id"]
            == f"voicetap:streaming_start:{streaming['command_id']}:{digest}"
        )

        ending = await run_command(redis, "streaming_stop", ccid)
        assert ending["ok"]
        [request] = fake.state.requests_for(ccid, "streaming_stop")
        assert request.body["command_id"] == f"voicetap:streaming_stop:{ending['command_id']}"

        # someone else's fork targets are passed through as they are
        external = await run_command(
            redis, "fork_start", ccid, rx="udp:192.0.2.10:40000", tx="udp:192.0.2.10:40001"
        )
        assert external["ok"] and external["allocated"] == {
            "rx": "udp:192.0.2.10:40000",
            "tx": "udp:192.0.2.10:40001",
        }
        assert service.allocator.in_use == 0

        # a command delivered twice is executed once
        await publish_command(
            redis, {"id": "twice", "action": "fork_stop", "call_control_id": ccid}
        )
        await publish_command(
            redis, {"id": "twice", "action": "fork_stop", "call_control_id": ccid}
        )
        await wait_for(
            lambda: _true(len(fake.state.requests_for(ccid, "fork_stop")) == 2),
            5,
            "second fork_stop",
        )
        await asyncio.sleep(0.5)
        assert len(fake.state.requests_for(ccid, "fork_stop")) == 2


async def test_api_errors_become_results_and_an_ended_call_is_not_an_error(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, _):
        unknown = await run_command(redis, "fork_start", "v3:no-such-call")
        assert not unknown["ok"] and unknown["error"] == "unknown_call"
        assert service.allocator.in_use == 0 and len(service.calls) == 0  # nothing held for it
        call = fake.state.create_call()
        fake.state.end_call(call.call_control_id)
        ended = await run_command(redis, "fork_start", call.call_control_id)
        assert ended["error"] == "call_ended" and service.allocator.in_use == 0
        # the automatic path: an answered call that has ended meanwhile starts nothing, reports nothing
        await publish_webhook(redis, "call.answered", call.call_control_id)
        await wait_for(
            lambda: _true(len(fake.state.requests_for(call.call_control_id, "fork_start")) == 2),
            5,
            "fork_start",
        )
        await asyncio.sleep(0.3)
        assert service.allocator.in_use == 0 and not await topic_events(redis, MEDIA_ERROR)
        assert not list(tmp_path.glob("*/*.wav"))  # neither spooled nor stored


async def test_ports_exhausted_is_a_clear_result_an_error_event_and_a_metric(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    first, second = fake.state.create_call(), fake.state.create_call()
    async with running(ingest_settings(tmp_path, redis_url, fake.url, pairs=1)) as (service, url):
        assert (await run_command(redis, "fork_start", first.call_control_id))["ok"]
        refused = await run_command(redis, "fork_start", second.call_control_id)
        assert (
            not refused["ok"]
            and refused["error"] == "no_capacity"
            and "port pair" in refused["detail"]
        )
        assert not fake.state.requests_for(second.call_control_id, "fork_start")
        [error] = await wait_for(lambda: topic_events(redis, MEDIA_ERROR), 5, "media error")
        assert (
            error["kind"] == "ports_exhausted"
            and error["call_control_id"] == second.call_control_id
        )
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
        assert "voicetap_ingest_ports_exhausted_total 1.0" in metrics
        assert (
            "voicetap_ingest_port_pairs_in_use 1.0" in metrics
            and "voicetap_ingest_port_pairs_capacity 1.0" in metrics
        )


async def test_pause_and_resume_keep_one_aligned_recording_with_the_gap_silent(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(6, 11), noise(6, 12))
    loop = asyncio.get_running_loop()
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, _):
        first = await run_command(redis, "fork_start", ccid)
        t0 = loop.time()
        fork1 = await send_fork(
            audio, target_port(first["allocated"]["rx"]), target_port(first["allocated"]["tx"]), 1.5
        )
        assert (await run_command(redis, "fork_stop", ccid))[
            "ok"
        ]  # the caller reads out a card number
        await asyncio.sleep(1.0)
        second = await run_command(redis, "fork_start", ccid)
        assert second["ok"]
        resume_frame = round((loop.time() - t0) / 0.02)  # live audio: the call went on meanwhile
        fork2 = await send_fork(
            audio,
            target_port(second["allocated"]["rx"]),
            target_port(second["allocated"]["tx"]),
            1.5,
            resume_frame,
        )
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        assert service.allocator.in_use == 0
    assert list((tmp_path / "recordings").glob("*.wav")) == [
        tmp_path / "recordings" / f"{ccid}.wav"
    ]
    _, frames = read_wav(Path(event["path"]))
    [[pause_start, pause_end]] = event["paused"]
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        track = "inbound" if channel == 0 else "outbound"
        reference = round_trip(pcm)
        one = reference[: fork1.sent[track] * 160]
        o1 = locate(frames[:, channel], one)
        np.testing.assert_array_equal(frames[o1 : o1 + len(one), channel], one)
        two = reference[resume_frame * 160 : (resume_frame + fork2.sent[track]) * 160]
        o2 = locate(frames[:, channel], two)
        np.testing.assert_array_equal(frames[o2 : o2 + len(two), channel], two)
        # the second part sits where the live call was: same offset as the first, within 40 ms
        assert abs((o2 - resume_frame * 160) - o1) <= 320, (o1, o2, resume_frame)
        gap_start, gap_end = o1 + len(one), o2
        assert not frames[gap_start:gap_end, channel].any()
        assert gap_start / 8000 - 0.05 <= pause_start and pause_end <= gap_end / 8000 + 0.05
    assert pause_end - pause_start >= 0.8


async def test_an_instance_forwards_what_it_does_not_hold_to_the_holder(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    await forwarding_between_two_instances(redis, redis_url, fake, tmp_path)


async def forwarding_between_two_instances(
    redis: RedisClient, redis_url: str, fake, tmp_path: Path, **settings: Any
) -> None:  # type: ignore[no-untyped-def]
    """Instance a holds a call; b takes a command and a hang-up for it: both go to a's inbox, and a
    executes and finishes the call. ``settings`` are added to both instances' own."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    settings_a = ingest_settings(
        tmp_path / "a", redis_url, fake.url, ingest_instance_id="ingest-a", **settings
    )
    settings_b = ingest_settings(
        tmp_path / "b", redis_url, fake.url, ingest_instance_id="ingest-b", **settings
    )
    async with running(settings_a) as (a, _):
        started = await run_command(redis, "fork_start", ccid)
        assert started["executed_by"] == "media_ingest:ingest-a"
        assert await redis.get(owner_key(ccid)) == b"ingest-a"
        async with running(settings_b) as (b, _):
            # b takes a fork_stop and a hang-up for a call a holds: both go to a's inbox
            stop = {"id": "stop-1", "action": "fork_stop", "call_control_id": ccid}
            await b.dispatcher.handle_commands(
                [
                    Entry(
                        MEDIA_COMMANDS,
                        "1-1",
                        {
                            "id": b"stop-1",
                            "type": b"fork_stop",
                            "event": codec.dumps(stop),
                            "call_control_id": ccid.encode(),
                        },
                    )
                ]
            )
            from tests.media_ingest.harness import command_result

            result = await command_result(redis, "stop-1")
            assert result["ok"] and result["executed_by"] == "media_ingest:ingest-a"
            await wait_for(lambda: _true(a.allocator.in_use == 0), 3, "a released the ports")
            hangup = {
                "data": {
                    "id": "h-1",
                    "event_type": "call.hangup",
                    "payload": {"call_control_id": ccid},
                }
            }
            await b.dispatcher.handle_lifecycle(
                [
                    Entry(
                        CALL_HANGUP,
                        "1-2",
                        {
                            "id": b"h-1",
                            "type": b"call.hangup",
                            "event": codec.dumps(hangup),
                            "call_control_id": ccid.encode(),
                        },
                    )
                ]
            )
            event = await recording_completed(redis, ccid)
            assert event["instance"] == "ingest-a" and len(a.calls) == 0 and len(b.calls) == 0
            assert not list((tmp_path / "b").glob("*/*.wav"))


def assert_part(channel: np.ndarray, pcm: np.ndarray, first_frame: int, frames: int) -> int:
    """Frames ``first_frame`` to ``first_frame + frames`` (20 ms each) of a leg's audio are in
    ``channel`` sample-exact (G.711 round trip); returns where they start."""
    reference = round_trip(pcm)[first_frame * 160 : (first_frame + frames) * 160]
    offset = locate(channel, reference)
    assert offset >= 0, f"frames {first_frame}.. not found"
    np.testing.assert_array_equal(channel[offset : offset + len(reference)], reference)
    return offset


@pytest.mark.parametrize("first", ["fork", "stream"])
async def test_switching_between_fork_and_stream_keeps_one_aligned_recording(
    first: str, redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """One media operation per call: streaming_start replaces the fork, fork_start the stream.
    Audio comes by real UDP, then by a real WebSocket client (or the other way round)."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(5, 13), noise(5, 14))
    loop = asyncio.get_running_loop()
    parts: list[tuple[int, int]] = []  # (first frame, frames sent) of each part, per leg alike

    async def fork_part(started: float) -> None:
        forked = await run_command(redis, "fork_start", ccid)
        assert forked["ok"], forked
        frame = round((loop.time() - started) / 0.02)  # live audio: the call went on meanwhile
        fork = await send_fork(
            audio,
            target_port(forked["allocated"]["rx"]),
            target_port(forked["allocated"]["tx"]),
            1.2,
            frame,
        )
        assert fork.sent["inbound"] == fork.sent["outbound"]
        parts.append((frame, fork.sent["inbound"]))

    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        t0 = loop.time()
        if first == "fork":
            await fork_part(t0)
            streaming = await run_command(redis, "streaming_start", ccid)  # replaces the fork
            assert streaming["ok"], streaming
            assert service.allocator.in_use == 0  # the fork's ports went back
            # Telnyx's fork.stopped for the replaced fork comes late: it pauses nothing
            await publish_webhook(
                redis, "call.fork.stopped", ccid, stream_type="decrypted", handled=True
            )
            assert service.calls.get(ccid).stopped_at is None
        else:
            assert (await run_command(redis, "streaming_start", ccid))["ok"]
        token = fake.state.requests_for(ccid, "streaming_start")[-1].body["stream_auth_token"]
        async with connect(ws_url(url), additional_headers={AUTH: token}) as ws:
            await open_stream(ws, service, ccid)
            frame = round((loop.time() - t0) / 0.02)
            await stream_audio(ws, audio, frame, 60)
            parts.append((frame, 60))
            if first == "stream":
                await asyncio.sleep(0.1)
                task = asyncio.create_task(fork_part(t0))  # replaces the stream ...
                await wait_for(lambda: _true(service.allocator.in_use == 1), 5, "fork ports")
                await stop_stream(ws, ccid)  # ... which Telnyx stops
        if first == "stream":
            await task
            assert (
                service.calls.get(ccid).stopped_at is None
                and service.calls.get(ccid).stream is None
            )
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        assert service.allocator.in_use == 0 and len(service.calls) == 0
    assert list((tmp_path / "recordings").iterdir()) == [
        tmp_path / "recordings" / f"{ccid}.wav"
    ]  # one recording
    assert event["media"] == (["fork", "stream"] if first == "fork" else ["stream", "fork"])
    assert event["codec"] == "PCMU" and event["legs"]["inbound"]["lost"] == 0
    _, frames = read_wav(Path(event["path"]))
    [(frame1, count1), (frame2, count2)] = parts
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        o1 = assert_part(frames[:, channel], pcm, frame1, count1)
        o2 = assert_part(frames[:, channel], pcm, frame2, count2)
        # both parts where the live call was: the same offset from the call's frame 0, within 40 ms
        assert abs((o2 - frame2 * 160) - (o1 - frame1 * 160)) <= 320, (o1, o2, frame1, frame2)
        assert (
            o1 + count1 * 160 <= o2 and not frames[o1 + count1 * 160 : o2, channel].any()
        )  # the handover is silent
    if (
        first == "fork"
    ):  # nothing paused but the tail after the stream's end (its WebSocket closed before the hang-up)
        [[stopped, end]] = event["paused"]
        assert stopped >= (o2 + count2 * 160) / 8000 - 0.05 and end == event["duration"]
    else:
        assert event["paused"] == []


async def test_a_late_fork_stopped_of_the_replaced_fork_is_ignored(
    redis: Redis, redis_url: str, fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pause then resume: the fork.stopped Telnyx sent for the first fork arrives after the resume.
    It must not stop the running fork; a fork.stopped of the running fork still does."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(5, 15), noise(5, 16))
    loop = asyncio.get_running_loop()
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, _):
        first = await run_command(redis, "fork_start", ccid)
        t0 = loop.time()
        fork1 = await send_fork(
            audio, target_port(first["allocated"]["rx"]), target_port(first["allocated"]["tx"]), 1.0
        )
        assert (await run_command(redis, "fork_stop", ccid))["ok"]
        stopped_at = datetime.now(UTC)  # when Telnyx stopped the first fork
        await asyncio.sleep(0.5)
        second = await run_command(redis, "fork_start", ccid)
        held = service.calls.get(ccid)

        def forking() -> bool:
            return (
                held.fork_active
                and held.stopped_at is None
                and len(held.receivers) == 2
                and service.allocator.in_use == 1
            )

        assert forking()
        # the old fork's fork.stopped, late: within the grace after the resume, even without a usable time
        await publish_webhook(
            redis, "call.fork.stopped", ccid, occurred_at="", handled=True, stream_type="decrypted"
        )
        assert forking()
        # past the grace, its occurred_at (before the resume) alone tells it is the old fork's
        monkeypatch.setattr("media_ingest.lifecycle.FORK_STOP_GRACE", 0.0)
        await publish_webhook(
            redis,
            "call.fork.stopped",
            ccid,
            occurred_at=stopped_at,
            handled=True,
            stream_type="decrypted",
        )
        assert forking()
        resume_frame = round((loop.time() - t0) / 0.02)
        fork2 = await send_fork(
            audio,
            target_port(second["allocated"]["rx"]),
            target_port(second["allocated"]["tx"]),
            1.0,
            resume_frame,
        )
        # the running fork stops (Telnyx ended it): that one pauses the call and frees its ports
        await publish_webhook(
            redis, "call.fork.stopped", ccid, handled=True, stream_type="decrypted"
        )
        assert not held.fork_active and held.stopped_at is not None and not held.receivers
        await wait_for(lambda: _true(service.allocator.in_use == 0), 3, "ports released")
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    [[p1_start, p1_end], [p2_start, p2_end]] = event["paused"]
    assert p1_end - p1_start >= 0.4 and p2_end == event["duration"]
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        track = "inbound" if channel == 0 else "outbound"
        o1 = assert_part(frames[:, channel], pcm, 0, fork1.sent[track])
        o2 = assert_part(
            frames[:, channel], pcm, resume_frame, fork2.sent[track]
        )  # the whole second fork recorded
        assert abs((o2 - resume_frame * 160) - o1) <= 320
        assert (
            p1_end <= o2 / 8000 + 0.05 and (o2 + fork2.sent[track] * 160) / 8000 - 0.05 <= p2_start
        )


async def test_a_call_paused_and_never_resumed_ends_after_the_paused_timeout(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(2, 17), noise(2, 18))
    settings = ingest_settings(tmp_path, redis_url, fake.url, ingest_paused_timeout_seconds=1.0)
    async with running(settings) as (service, _):
        started = await run_command(redis, "fork_start", ccid)
        fork = await send_fork(
            audio,
            target_port(started["allocated"]["rx"]),
            target_port(started["allocated"]["tx"]),
            1.0,
        )
        assert (await run_command(redis, "fork_stop", ccid))["ok"]
        event = await recording_completed(redis, ccid, timeout=10)
        assert event["reason"] == "paused_timeout"
        assert service.allocator.in_use == 0 and len(service.calls) == 0
        assert await redis.get(owner_key(ccid)) is None
    assert not list((tmp_path / "spool").iterdir())  # stored: nothing left to repair or upload
    [[pause_start, pause_end]] = event["paused"]  # listed up to the end of the recording
    assert pause_end == event["duration"] and pause_end - pause_start >= 1.0
    _, frames = read_wav(Path(event["path"]))
    assert abs(len(frames) / 8000 - event["duration"]) <= 0.001
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        track = "inbound" if channel == 0 else "outbound"
        offset = assert_part(frames[:, channel], pcm, 0, fork.sent[track])
        end = offset + fork.sent[track] * 160
        assert end / 8000 - 0.05 <= pause_start <= end / 8000 + 1.0  # at the fork_stop
        assert not frames[end:, channel].any()


async def _true(value: bool) -> bool:
    return value
