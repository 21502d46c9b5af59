"""Media commands from ``voicetap.command.media`` to the fake Telnyx API (through the real SDK) and
the result topic; pause and resume; routing between two instances; ports exhausted."""

import asyncio
from pathlib import Path

import httpx
import numpy as np
from redis.asyncio import Redis

from media_ingest.control import owner_key
from media_ingest.wav import read_wav
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
from voicetap_common import codec
from voicetap_common.commands import MEDIA_COMMANDS
from voicetap_common.media_events import MEDIA_ERROR
from voicetap_common.streams import Entry
from voicetap_common.topics import CALL_HANGUP


async def test_each_media_command_reaches_the_api_and_the_result_topic(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    settings = ingest_settings(tmp_path, redis_url, fake.url, ingest_public_url="ws://127.0.0.1:8001")
    async with running(settings) as (service, _):
        started = await run_command(redis, "fork_start", ccid, correlation_id="c-1")
        assert started["ok"] and started["correlation_id"] == "c-1" and started["action"] == "fork_start"
        assert started["executed_by"] == f"media_ingest:{service.instance}"
        [request] = fake.state.requests_for(ccid, "fork_start")
        assert request.path == f"/v2/calls/{ccid}/actions/fork_start"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["command_id"] == started["telnyx_command_id"] == f"voicetap:fork_start:{started['command_id']}"
        assert request.body["rx"] == started["allocated"]["rx"] and request.body["tx"] == started["allocated"]["tx"]
        assert service.allocator.in_use == 1

        stopped = await run_command(redis, "fork_stop", ccid)
        assert stopped["ok"]
        [request] = fake.state.requests_for(ccid, "fork_stop")
        assert request.body == {"stream_type": "decrypted", "command_id": f"voicetap:fork_stop:{stopped['command_id']}"}
        await wait_for(lambda: _true(service.allocator.in_use == 0), 3, "ports released")

        streaming = await run_command(redis, "streaming_start", ccid)
        assert streaming["ok"], streaming
        [request] = fake.state.requests_for(ccid, "streaming_start")
        assert request.body["stream_url"] == "ws://127.0.0.1:8001/streams/telnyx" == streaming["allocated"]["stream_url"]
        assert len(request.body["stream_auth_token"]) >= 32 and request.body["stream_auth_token"] not in codec.dumps(streaming).decode()
        assert request.body["stream_track"] == "both_tracks" and request.body["stream_codec"] == "PCMU"
        assert request.body["stream_bidirectional_mode"] == "rtp" and request.body["stream_bidirectional_codec"] == "PCMU"
        assert request.body["command_id"] == f"voicetap:streaming_start:{streaming['command_id']}"

        ending = await run_command(redis, "streaming_stop", ccid)
        assert ending["ok"]
        [request] = fake.state.requests_for(ccid, "streaming_stop")
        assert request.body["command_id"] == f"voicetap:streaming_stop:{ending['command_id']}"

        # someone else's fork targets are passed through as they are
        external = await run_command(redis, "fork_start", ccid, rx="udp:192.0.2.10:40000", tx="udp:192.0.2.10:40001")
        assert external["ok"] and external["allocated"] == {"rx": "udp:192.0.2.10:40000", "tx": "udp:192.0.2.10:40001"}
        assert service.allocator.in_use == 0

        # a command delivered twice is executed once
        await publish_command(redis, {"id": "twice", "action": "fork_stop", "call_control_id": ccid})
        await publish_command(redis, {"id": "twice", "action": "fork_stop", "call_control_id": ccid})
        await wait_for(lambda: _true(len(fake.state.requests_for(ccid, "fork_stop")) == 2), 5, "second fork_stop")
        await asyncio.sleep(0.5)
        assert len(fake.state.requests_for(ccid, "fork_stop")) == 2


async def test_api_errors_become_results_and_an_ended_call_is_not_an_error(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
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
        await wait_for(lambda: _true(len(fake.state.requests_for(call.call_control_id, "fork_start")) == 2), 5, "fork_start")
        await asyncio.sleep(0.3)
        assert service.allocator.in_use == 0 and not await topic_events(redis, MEDIA_ERROR)
        assert not list((tmp_path / "recordings").glob("*.wav"))


async def test_ports_exhausted_is_a_clear_result_an_error_event_and_a_metric(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    first, second = fake.state.create_call(), fake.state.create_call()
    async with running(ingest_settings(tmp_path, redis_url, fake.url, pairs=1)) as (service, url):
        assert (await run_command(redis, "fork_start", first.call_control_id))["ok"]
        refused = await run_command(redis, "fork_start", second.call_control_id)
        assert not refused["ok"] and refused["error"] == "no_capacity" and "port pair" in refused["detail"]
        assert not fake.state.requests_for(second.call_control_id, "fork_start")
        [error] = await wait_for(lambda: topic_events(redis, MEDIA_ERROR), 5, "media error")
        assert error["kind"] == "ports_exhausted" and error["call_control_id"] == second.call_control_id
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
        assert "voicetap_ingest_ports_exhausted_total 1.0" in metrics
        assert "voicetap_ingest_port_pairs_in_use 1.0" in metrics and "voicetap_ingest_port_pairs_capacity 1.0" in metrics


async def test_pause_and_resume_keep_one_aligned_recording_with_the_gap_silent(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(6, 11), noise(6, 12))
    loop = asyncio.get_running_loop()
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, _):
        first = await run_command(redis, "fork_start", ccid)
        t0 = loop.time()
        fork1 = await send_fork(audio, target_port(first["allocated"]["rx"]), target_port(first["allocated"]["tx"]), 1.5)
        assert (await run_command(redis, "fork_stop", ccid))["ok"]  # the caller reads out a card number
        await asyncio.sleep(1.0)
        second = await run_command(redis, "fork_start", ccid)
        assert second["ok"]
        resume_frame = round((loop.time() - t0) / 0.02)  # live audio: the call went on meanwhile
        fork2 = await send_fork(audio, target_port(second["allocated"]["rx"]), target_port(second["allocated"]["tx"]), 1.5, resume_frame)
        await asyncio.sleep(0.2)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        assert service.allocator.in_use == 0
    assert list((tmp_path / "recordings").glob("*.wav")) == [tmp_path / "recordings" / f"{ccid}.wav"]
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


async def test_an_instance_forwards_what_it_does_not_hold_to_the_holder(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    settings_a = ingest_settings(tmp_path / "a", redis_url, fake.url, ingest_instance_id="ingest-a")
    settings_b = ingest_settings(tmp_path / "b", redis_url, fake.url, ingest_instance_id="ingest-b")
    async with running(settings_a) as (a, _):
        started = await run_command(redis, "fork_start", ccid)
        assert started["executed_by"] == "media_ingest:ingest-a"
        assert await redis.get(owner_key(ccid)) == b"ingest-a"
        async with running(settings_b) as (b, _):
            # b takes a fork_stop and a hang-up for a call a holds: both go to a's inbox
            stop = {"id": "stop-1", "action": "fork_stop", "call_control_id": ccid}
            await b.control.handle_commands([Entry(MEDIA_COMMANDS, "1-1", {"id": b"stop-1", "type": b"fork_stop", "event": codec.dumps(stop), "call_control_id": ccid.encode()})])
            from tests.media_ingest.harness import command_result

            result = await command_result(redis, "stop-1")
            assert result["ok"] and result["executed_by"] == "media_ingest:ingest-a"
            await wait_for(lambda: _true(a.allocator.in_use == 0), 3, "a released the ports")
            hangup = {"data": {"id": "h-1", "event_type": "call.hangup", "payload": {"call_control_id": ccid}}}
            await b.control.handle_lifecycle([Entry(CALL_HANGUP, "1-2", {"id": b"h-1", "type": b"call.hangup", "event": codec.dumps(hangup), "call_control_id": ccid.encode()})])
            event = await recording_completed(redis, ccid)
            assert event["instance"] == "ingest-a" and len(a.calls) == 0 and len(b.calls) == 0
            assert not list((tmp_path / "b").glob("recordings/*.wav"))


async def _true(value: bool) -> bool:
    return value
