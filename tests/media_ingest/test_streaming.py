"""``/streams/telnyx`` end to end with a real WebSocket client speaking Telnyx's side of the protocol."""

import asyncio
import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from media_ingest.wav import read_wav
from telnyx_simulator.g711 import ulaw_encode
from tests.media_ingest.harness import (
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
from voicetap_common import codec
from voicetap_common.media_events import MEDIA_DTMF, MEDIA_ERROR, MEDIA_MARK, MEDIA_PLAYBACK
from voicetap_common.streams import Producer

AUTH = "x-telnyx-streaming-auth-token"


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/streams/telnyx"


def start_frame(ccid: str, stream_id: str = "stream-1") -> dict[str, Any]:
    return {
        "event": "start", "sequence_number": "1", "stream_id": stream_id,
        "start": {"user_id": "u", "call_control_id": ccid, "call_session_id": "s", "from": "+1", "to": "+2", "tags": [],
                  "client_state": None, "custom_parameters": {}, "media_format": {"encoding": "audio/x-mulaw", "sample_rate": 8000, "channels": 1}},
    }


def media_frame(track: str, chunk: int, payload: bytes, seq: int) -> str:
    return codec.dumps({
        "event": "media", "sequence_number": str(seq), "stream_id": "stream-1",
        "media": {"track": track, "chunk": str(chunk), "timestamp": str((chunk - 1) * 20), "payload": base64.b64encode(payload).decode()},
    }).decode()


async def token_for(redis: Redis, fake, ccid: str) -> str:
    result = await run_command(redis, "streaming_start", ccid)
    assert result["ok"], result
    return fake.state.requests_for(ccid, "streaming_start")[-1].body["stream_auth_token"]


async def receive_until(ws: ClientConnection, event: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame = codec.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("event") == event:
            return frame


async def test_a_stream_is_recorded_in_order_and_playback_goes_back(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    inbound, outbound = noise(2, 21), noise(2, 22)
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url), additional_headers={AUTH: token}) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0"}).decode())
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await wait_for(lambda: _true(ccid in service.calls and service.calls.get(ccid).stream is not None), 5, "stream attached")
            chunks = 100
            order = list(range(1, chunks + 1))
            for i in range(1, chunks - 1, 4):  # every other pair swapped: out-of-order frames
                order[i], order[i + 1] = order[i + 1], order[i]
            loop = asyncio.get_running_loop()
            started, seq = loop.time(), 1
            for n, chunk in enumerate(order):
                for track, pcm in (("inbound", inbound), ("outbound", outbound)):
                    seq += 1
                    await ws.send(media_frame(track, chunk, ulaw_encode(pcm[(chunk - 1) * 160 : chunk * 160]), seq))
                if n == 10:
                    await ws.send(codec.dumps({"event": "dtmf", "stream_id": "stream-1", "occurred_at": "2026-01-01T00:00:00Z", "sequence_number": "900", "dtmf": {"digit": "7"}}).decode())
                await asyncio.sleep(max(started + (n + 1) * 0.02 - loop.time(), 0))

            # playback: any consumer writes it, the instance holding the stream sends it, in order
            producer = Producer(redis, 1000)
            audio = base64.b64encode(ulaw_encode(noise(0.1, 23))).decode()
            await producer.publish(MEDIA_PLAYBACK, "p-1", "playback", codec.dumps({"payload": audio, "mark": "greeting"}), call_control_id=ccid)
            await producer.publish(MEDIA_PLAYBACK, "p-other", "playback", codec.dumps({"payload": "AAAA"}), call_control_id="v3:another-call")
            await producer.publish(MEDIA_PLAYBACK, "p-2", "playback", codec.dumps({"clear": True}), call_control_id=ccid)
            media = await receive_until(ws, "media")
            assert media == {"event": "media", "media": {"payload": audio}}
            mark = await receive_until(ws, "mark")
            assert mark == {"event": "mark", "mark": {"name": "greeting"}}
            assert await receive_until(ws, "clear") == {"event": "clear"}
            # Telnyx echoes the mark once played; both error shapes are understood
            await ws.send(codec.dumps({"event": "mark", "stream_id": "stream-1", "sequence_number": "901", "mark": {"name": "greeting"}}).decode())
            await ws.send(codec.dumps({"event": "error", "stream_id": "stream-1", "payload": {"code": 100003, "title": "malformed_frame", "detail": "bad"}}).decode())
            await ws.send(codec.dumps({"event": "error", "sequence_number": "902", "error": {"code": "100005", "title": "rate_limit_reached", "detail": "slow"}}).decode())
            await ws.send(codec.dumps({"event": "stop", "sequence_number": "903", "stream_id": "stream-1", "stop": {"user_id": "u", "call_control_id": ccid}}).decode())
        [dtmf] = await wait_for(lambda: topic_events(redis, MEDIA_DTMF), 5, "dtmf")
        assert dtmf["digit"] == "7" and dtmf["call_control_id"] == ccid and dtmf["stream_id"] == "stream-1"
        [echo] = await wait_for(lambda: topic_events(redis, MEDIA_MARK), 5, "mark")
        assert echo["name"] == "greeting" and echo["call_control_id"] == ccid
        errors = await wait_for(lambda: _len(topic_events(redis, MEDIA_ERROR), 2), 5, "stream errors")
        assert {e["kind"] for e in errors} == {"stream_error"} and "100003" in errors[0]["detail"] and "100005" in errors[1]["detail"]
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
    assert event["media"] == ["stream"] and event["codec"] == "PCMU"
    assert event["legs"]["inbound"]["received"] == chunks and event["legs"]["inbound"]["reordered"] > 0
    assert event["legs"]["inbound"]["lost"] == 0
    _, frames = read_wav(Path(event["path"]))
    for channel, pcm in ((0, inbound), (1, outbound)):
        reference = round_trip(pcm[: chunks * 160])
        offset = locate(frames[:, channel], reference)
        assert offset >= 0
        np.testing.assert_array_equal(frames[offset : offset + len(reference), channel], reference)


@pytest.mark.parametrize("case", ["wrong", "missing", "other call's"])
async def test_a_bad_token_is_refused_before_any_frame_is_trusted(case: str, redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call, other = fake.state.create_call(), fake.state.create_call()
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        await token_for(redis, fake, call.call_control_id)
        other_token = await token_for(redis, fake, other.call_control_id)
        headers = {"wrong": {AUTH: "not-the-token"}, "missing": {}, "other call's": {AUTH: other_token}}[case]
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


async def test_the_token_may_come_in_the_connected_frame(redis: Redis, redis_url: str, fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, url):
        token = await token_for(redis, fake, ccid)
        async with connect(ws_url(url)) as ws:
            await ws.send(codec.dumps({"event": "connected", "version": "1.0.0", AUTH: token}).decode())
            await ws.send(codec.dumps(start_frame(ccid)).decode())
            await wait_for(lambda: _true(service.calls.get(ccid) is not None and service.calls.get(ccid).stream is not None), 5, "stream attached")


async def _true(value: bool) -> bool:
    return value


async def _len(awaitable: Any, count: int) -> Any:
    value = await awaitable
    return value if len(value) >= count else None
