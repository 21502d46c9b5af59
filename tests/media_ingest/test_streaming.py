"""``/streams/telnyx`` end to end with a real WebSocket client speaking Telnyx's side of the protocol."""

import asyncio
import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from media_ingest.keys import TOKEN_PREFIX
from media_ingest.protocol.wav import read_wav
from telnyx_simulator.audio import CallAudio
from telnyx_simulator.g711 import ulaw_encode
from tests.media_ingest.harness import (
    at_least,
    ingest_settings,
    locate,
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip
from voicetap_sdk import codec
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import MEDIA_DTMF, MEDIA_ERROR, MEDIA_MARK, MEDIA_PLAYBACK

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it

AUTH = "x-telnyx-streaming-auth-token"


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/streams/telnyx"


def start_frame(ccid: str, stream_id: str = "stream-1") -> dict[str, Any]:
    return {
        "event": "start",
        "sequence_number": "1",
        "stream_id": stream_id,
        "start": {
            "user_id": "u",
            "call_control_id": ccid,
            "call_session_id": "s",
            "from": "+1",
            "to": "+2",
            "tags": [],
            "client_state": None,
            "custom_parameters": {},
            "media_format": {"encoding": "audio/x-mulaw", "sample_rate": 8000, "channels": 1},
        },
    }


def media_frame(
    track: str, chunk: int, payload: bytes, seq: int, stream_id: str = "stream-1"
) -> str:
    return codec.dumps(
        {
            "event": "media",
            "sequence_number": str(seq),
            "stream_id": stream_id,
            "media": {
                "track": track,
                "chunk": str(chunk),
                "timestamp": str((chunk - 1) * 20),
                "payload": base64.b64encode(payload).decode(),
            },
        }
    ).decode()


async def token_for(redis: Redis, fake, ccid: str) -> str:
    result = await run_command(redis, "streaming_start", ccid)
    assert result["ok"], result
    return fake.state.requests_for(ccid, "streaming_start")[-1].body["stream_auth_token"]


async def open_stream(
    ws: ClientConnection, service, ccid: str, stream_id: str = "stream-1"
) -> None:
    """Telnyx's opening frames; returns once the instance has attached the stream to the call."""
    await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
    await ws.send(codec.dumps(start_frame(ccid, stream_id)).decode())
    await wait_for(
        lambda: _true(
            service.calls.get(ccid) is not None and service.calls.get(ccid).stream is not None
        ),
        5,
        "stream attached",
    )


async def stream_audio(
    ws: ClientConnection,
    audio: CallAudio,
    first_frame: int,
    chunks: int,
    stream_id: str = "stream-1",
    order: list[int] | None = None,
) -> None:
    """``chunks`` media frames per track (chunk 1 = frame ``first_frame`` of the call's audio), one
    pair every 20 ms, in ``order`` (of chunk numbers) when given."""
    loop = asyncio.get_running_loop()
    started, seq = loop.time(), 1
    for n, chunk in enumerate(order or range(1, chunks + 1)):
        for track in ("inbound", "outbound"):
            seq += 1
            await ws.send(
                media_frame(
                    track,
                    chunk,
                    ulaw_encode(audio.frame(track, first_frame + chunk - 1)),
                    seq,
                    stream_id,
                )
            )
        await asyncio.sleep(max(started + (n + 1) * 0.02 - loop.time(), 0))


async def stop_stream(ws: ClientConnection, ccid: str, stream_id: str = "stream-1") -> None:
    await ws.send(
        codec.dumps(
            {
                "event": "stop",
                "sequence_number": "999",
                "stream_id": stream_id,
                "stop": {"user_id": "u", "call_control_id": ccid},
            }
        ).decode()
    )


async def receive_until(ws: ClientConnection, event: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame = codec.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("event") == event:
            return frame


async def test_a_stream_is_recorded_in_order_and_playback_goes_back(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    inbound, outbound = noise(2, 21), noise(2, 22)
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url), additional_headers={AUTH: token}) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await wait_for(
                lambda: _true(ccid in service.calls and service.calls.get(ccid).stream is not None),
                5,
                "stream attached",
            )
            chunks = 100
            order = list(range(1, chunks + 1))
            for i in range(1, chunks - 1, 4):  # every other pair swapped: out-of-order frames
                order[i], order[i + 1] = order[i + 1], order[i]
            loop = asyncio.get_running_loop()
            started, seq = loop.time(), 1
            for n, chunk in enumerate(order):
                for track, pcm in (("inbound", inbound), ("outbound", outbound)):
                    seq += 1
                    await ws.send(
                        media_frame(
                            track, chunk, ulaw_encode(pcm[(chunk - 1) * 160 : chunk * 160]), seq
                        )
                    )
                if n == 10:
                    await ws.send(
                        codec.dumps(
                            {
                                "event": "dtmf",
                                "stream_id": "stream-1",
                                "occurred_at": "2026-01-01T00:00:00Z",
                                "sequence_number": "900",
                                "dtmf": {"digit": "7"},
                            }
                        ).decode()
                    )
                await asyncio.sleep(max(started + (n + 1) * 0.02 - loop.time(), 0))

            # playback: any consumer writes it, the instance holding the stream sends it, in order
            producer = Producer(redis, 1000)
            audio = base64.b64encode(ulaw_encode(noise(0.1, 23))).decode()
            await producer.publish(
                MEDIA_PLAYBACK,
                "p-1",
                "playback",
                codec.dumps({"payload": audio, "mark": "greeting"}),
                call_control_id=ccid,
            )
            await producer.publish(
                MEDIA_PLAYBACK,
                "p-other",
                "playback",
                codec.dumps({"payload": "AAAA"}),
                call_control_id="v3:another-call",
            )
            await producer.publish(
                MEDIA_PLAYBACK,
                "p-2",
                "playback",
                codec.dumps({"clear": True}),
                call_control_id=ccid,
            )
            media = await receive_until(ws, "media")
            assert media == {"event": "media", "media": {"payload": audio}}
            mark = await receive_until(ws, "mark")
            assert mark == {"event": "mark", "mark": {"name": "greeting"}}
            assert await receive_until(ws, "clear") == {"event": "clear"}
            # Telnyx echoes the mark once played; both error shapes are understood
            await ws.send(
                codec.dumps(
                    {
                        "event": "mark",
                        "stream_id": "stream-1",
                        "sequence_number": "901",
                        "mark": {"name": "greeting"},
                    }
                ).decode()
            )
            await ws.send(
                codec.dumps(
                    {
                        "event": "error",
                        "stream_id": "stream-1",
                        "payload": {"code": 100003, "title": "malformed_frame", "detail": "bad"},
                    }
                ).decode()
            )
            await ws.send(
                codec.dumps(
                    {
                        "event": "error",
                        "sequence_number": "902",
                        "error": {
                            "code": "100005",
                            "title": "rate_limit_reached",
                            "detail": "slow",
                        },
                    }
                ).decode()
            )
            await ws.send(
                codec.dumps(
                    {
                        "event": "stop",
                        "sequence_number": "903",
                        "stream_id": "stream-1",
                        "stop": {"user_id": "u", "call_control_id": ccid},
                    }
                ).decode()
            )
        [dtmf] = await wait_for(lambda: topic_events(redis, MEDIA_DTMF), 5, "dtmf")
        assert (
            dtmf["digit"] == "7"
            and dtmf["call_control_id"] == ccid
            and dtmf["stream_id"] == "stream-1"
        )
        [echo] = await wait_for(lambda: topic_events(redis, MEDIA_MARK), 5, "mark")
        assert echo["name"] == "greeting" and echo["call_control_id"] == ccid
        errors = await wait_for(
            lambda: at_least(topic_events(redis, MEDIA_ERROR), 2), 5, "stream errors"
        )
        assert (
            {e["kind"] for e in errors} == {"stream_error"}
            and "100003" in errors[0]["detail"]
            and "100005" in errors[1]["detail"]
        )
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    assert event["media"] == ["stream"] and event["codec"] == "PCMU"
    assert (
        event["legs"]["inbound"]["received"] == chunks and event["legs"]["inbound"]["reordered"] > 0
    )
    assert event["legs"]["inbound"]["lost"] == 0
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, inbound), (1, outbound)):
        reference = round_trip(pcm[: chunks * 160])
        offset = locate(frames[:, channel], reference)
        assert offset >= 0
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)


@pytest.mark.parametrize("case", ["wrong", "missing", "other call's"])
async def test_a_bad_token_is_refused_before_any_frame_is_trusted(
    case: str, redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call, other = fake.state.create_call(), fake.state.create_call()
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        await token_for(redis, fake, call.call_control_id)
        other_token = await token_for(redis, fake, other.call_control_id)
        headers = {
            "wrong": {AUTH: "not-the-token"},
            "missing": {},
            "other call's": {AUTH: other_token},
        }[case]
        async with connect(ws_url(url), additional_headers=headers) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
            await ws.send(codec.dumps(start_frame(call.call_control_id)).decode())
            await ws.send(media_frame("inbound", 1, b"\x00" * 160, 2))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        held = service.calls.get(call.call_control_id)
        assert held is None or (held.stream is None and held.recording.inbound.stats.received == 0)
        errors = await wait_for(lambda: topic_events(redis, MEDIA_ERROR), 5, "refusal event")
        assert errors[-1]["kind"] == "stream_auth_failed"


async def test_the_token_may_come_in_the_connected_frame(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url)) as ws:
            await ws.send(
                codec.dumps({"event": "connected", "version": "1.0.0", AUTH: token}).decode()
            )
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await wait_for(
                lambda: _true(
                    service.calls.get(ccid) is not None
                    and service.calls.get(ccid).stream is not None
                ),
                5,
                "stream attached",
            )


async def _true(value: bool) -> bool:
    return value


async def test_a_first_chunk_that_arrives_after_the_second_is_recorded_sample_exact(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(1.5, 24), noise(1.5, 25))
    chunks = 50
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url), additional_headers={AUTH: token}) as ws:
            await open_stream(ws, service, ccid)
            await stream_audio(
                ws, audio, 0, chunks, order=[2, 1, *range(3, chunks + 1)]
            )  # the stream's first two swapped
            await stop_stream(ws, ccid)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    for track in ("inbound", "outbound"):
        stats = event["legs"][track]
        assert (stats["received"], stats["lost"], stats["duplicated"], stats["late"]) == (
            chunks,
            0,
            0,
            0,
        ), stats
        assert stats["reordered"] == 1
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        reference = round_trip(pcm[: chunks * 160])  # chunk 1's audio included
        offset = locate(frames[:, channel], reference)
        assert offset >= 0, "the first chunk is not at the start of the recorded audio"
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)
        assert not frames[:offset, channel].any()


async def test_a_stream_that_fails_to_connect_pauses_the_call_until_a_retry_resumes_it(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """streaming.failed: the error published, the token revoked, the recording kept and paused; a
    stale failure of the first attempt, delivered after the retry, leaves the retry alone."""
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(4, 26), noise(4, 27))
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        first_token = await token_for(redis, fake, ccid)
        failed_at = datetime.now(UTC)
        await publish_webhook(
            redis,
            "streaming.failed",
            ccid,
            occurred_at=failed_at,
            handled=True,
            failure_reason="connection_failed",
            stream_id="s-first",
            stream_type="websocket",
        )
        [error] = await wait_for(lambda: topic_events(redis, MEDIA_ERROR), 5, "stream_failed event")
        assert (
            error["kind"] == "stream_failed"
            and error["call_control_id"] == ccid
            and "connection_failed" in error["detail"]
        )
        held = service.calls.get(ccid)
        assert held is not None and held.stopped_at is not None  # kept, paused
        assert await redis.get(TOKEN_PREFIX + ccid) is None and service.allocator.in_use == 0
        async with connect(
            ws_url(url), additional_headers={AUTH: first_token}
        ) as ws:  # the failed stream's token is dead
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        await asyncio.sleep(0.5)

        second_token = await token_for(redis, fake, ccid)  # a consumer retries
        # Telnyx delivers the first attempt's failure once more, late: it is not the retry's
        await publish_webhook(
            redis,
            "streaming.failed",
            ccid,
            occurred_at=failed_at,
            handled=True,
            failure_reason="connection_failed",
            stream_id="s-first",
            stream_type="websocket",
        )
        async with connect(ws_url(url), additional_headers={AUTH: second_token}) as ws:
            await open_stream(ws, service, ccid, "s-second")
            resume_frame = round(
                (time.monotonic() - held.origin) / 0.02
            )  # frames since the recording's start
            await stream_audio(ws, audio, resume_frame, 50, "s-second")
            await stop_stream(ws, ccid, "s-second")
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    assert (
        len(await topic_events(redis, MEDIA_ERROR)) == 2
    )  # the refused token; the stale failure published nothing
    assert event["reason"] == "hangup" and event["media"] == ["stream"]
    # paused from the failure to the retry's start, and from the retry's stop to the hang-up
    [[pause_start, pause_end], [stopped, end]] = event["paused"]
    assert end == event["duration"] and stopped >= pause_end + 0.9
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        reference = round_trip(pcm[resume_frame * 160 : (resume_frame + 50) * 160])
        offset = locate(frames[:, channel], reference)
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)
        assert (
            abs(offset - resume_frame * 160) <= 480
        )  # at the call's time: the paused start kept its place
        assert not frames[:offset, channel].any()
        assert pause_end <= offset / 8000 + 0.05
    assert pause_end - pause_start >= 0.5


async def test_a_stream_that_fails_mid_call_is_closed_and_the_call_ends_after_the_paused_timeout(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    audio = CallAudio(noise(2, 28), noise(2, 29))
    settings = ingest_settings(tmp_path, redis_url, fake.url, ingest_paused_timeout_seconds=1.0)
    async with running(settings) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url), additional_headers={AUTH: token}) as ws:
            await open_stream(ws, service, ccid, "s-live")
            await stream_audio(ws, audio, 0, 40, "s-live")
            # a failure naming another stream is not this one's
            await publish_webhook(
                redis,
                "streaming.failed",
                ccid,
                handled=True,
                failure_reason="x",
                stream_id="s-other",
                stream_type="websocket",
            )
            assert (
                service.calls.get(ccid).stream is not None
                and service.calls.get(ccid).stopped_at is None
            )
            await publish_webhook(
                redis,
                "streaming.failed",
                ccid,
                failure_reason="stream_timeout",
                stream_id="s-live",
                stream_type="websocket",
            )
            with pytest.raises(ConnectionClosed):  # the instance closes what is left of the stream
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        event = await recording_completed(redis, ccid, timeout=10)
        assert event["reason"] == "paused_timeout" and len(service.calls) == 0
        assert await redis.get(TOKEN_PREFIX + ccid) is None
    [error] = await topic_events(redis, MEDIA_ERROR)
    assert error["kind"] == "stream_failed" and "stream_timeout" in error["detail"]
    [[pause_start, pause_end]] = event["paused"]
    assert pause_end == event["duration"] and pause_end - pause_start >= 1.0
    _, frames = read_wav(Path(event["path"]))
    reference = round_trip(audio.inbound[: 40 * 160])
    offset = locate(frames[:, 0], reference)
    np.testing.assert_array_equal(frames[offset : offset + len(reference), 0], reference)
    assert offset / 8000 + 0.8 - 0.1 <= pause_start
    assert not frames[round(pause_start * 8000) :].any()
