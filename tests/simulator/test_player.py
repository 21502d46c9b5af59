"""The call player against real servers: signed webhooks over HTTP, RTP over UDP, media over WebSocket."""

import asyncio
import base64
import itertools
import socket
import struct
import uuid
import wave
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import telnyx

from telnyx_simulator.audio import CallAudio
from telnyx_simulator.g711 import ulaw_decode
from telnyx_simulator.player import CallPlayer, CallSpec
from telnyx_simulator.script import parse_script
from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from telnyx_simulator.webhooks import DeliveryPolicy, WebhookSender
from tests.conftest import Fake
from voicetap_sdk.events import CallHangupEvent, CallTranscriptionEvent, parse_envelope

from .receivers import MediaEndpoint, WebhookReceiver

SCRIPT = parse_script("inbound: I would like to check my order\noutbound: sure what is the number")
Stack = Callable[[telnyx.AsyncTelnyx, str, dict[str, Any]], Awaitable[None]]


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    yield socks[0], socks[1]
    for sock in socks:
        sock.close()


def _drain(sock: socket.socket) -> list[bytes]:
    packets = []
    while True:
        try:
            packets.append(sock.recv(2048))
        except BlockingIOError:
            return packets


def _stereo_wav(path: Path, left: int, right: int, seconds: float) -> Path:
    frames = np.tile(np.array([left, right], dtype="<i2"), int(seconds * 8000))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(frames.tobytes())
    return path


async def _play(
    fake: Fake,
    sdk: telnyx.AsyncTelnyx,
    receiver: WebhookReceiver,
    spec: CallSpec,
    stack: Stack,
    policy: DeliveryPolicy | None = None,
) -> tuple[CallPlayer, WebhookSigner]:
    """Play a call; once ``call.answered`` arrives, ``stack`` acts on it as voicetap would."""
    signer = WebhookSigner.generate()
    async with (
        serve(receiver.app()) as url,
        WebhookSender(f"{url}/webhooks/telnyx", signer, policy or DeliveryPolicy()) as sender,
    ):
        player = CallPlayer(fake.state, sender, spec)
        task = asyncio.create_task(player.run())
        answered = await receiver.wait_for("call.answered")
        await stack(sdk, answered["data"]["payload"]["call_control_id"], answered)
        await asyncio.wait_for(task, 10)
    return player, signer


async def test_call_sends_signed_webhooks_rtp_legs_and_transcripts(
    fake: Fake,
    sdk: telnyx.AsyncTelnyx,
    udp_pair: tuple[socket.socket, socket.socket],
    tmp_path: Path,
) -> None:
    rx, tx = udp_pair
    receiver = WebhookReceiver()

    async def stack(sdk: telnyx.AsyncTelnyx, cid: str, answered: dict[str, Any]) -> None:
        await sdk.calls.actions.start_forking(
            cid,
            rx=f"udp:127.0.0.1:{rx.getsockname()[1]}",
            tx=f"udp:127.0.0.1:{tx.getsockname()[1]}",
            stream_type="decrypted",
            command_id=f"fork_start:{answered['data']['id']}",
        )
        await sdk.calls.actions.start_transcription(
            cid, transcription_engine="B", transcription_tracks="both"
        )

    audio = CallAudio.from_wav(_stereo_wav(tmp_path / "call.wav", 1000, -3000, 1.0))
    spec = CallSpec(audio=audio, duration=0.8, script=SCRIPT)
    player, signer = await _play(fake, sdk, receiver, spec, stack)

    for got in receiver.received:
        got.verify(signer.public_key)
        assert got.headers["content-type"] == "application/json"
    types = [got.event_type for got in receiver.received]
    assert types[0] == "call.initiated" and types[-1] == "call.hangup"
    assert {"call.answered", "call.fork.started", "call.fork.stopped"} <= set(types)
    envelopes = [parse_envelope(got.body) for got in receiver.received]
    assert len({e.data.id for e in envelopes}) == len(envelopes)
    metas = [(e.meta.attempt, str(e.meta.delivered_to)) for e in envelopes if e.meta is not None]
    assert len(metas) == len(envelopes) and all(
        a == 1 and url.endswith("/webhooks/telnyx") for a, url in metas
    )

    transcripts = [e.data for e in envelopes if isinstance(e.data, CallTranscriptionEvent)]
    assert [
        (t.payload.transcription_data.transcript, t.payload.transcription_data.transcription_track)
        for t in transcripts
    ] == [
        ("I would like to check my order", "inbound"),
        ("sure what is the number", "outbound"),
    ]
    assert all(t.payload.transcription_data.is_final for t in transcripts)
    [hangup] = [e.data for e in envelopes if isinstance(e.data, CallHangupEvent)]
    raw_hangup = receiver.of_type("call.hangup")[0]["data"]["payload"]
    assert "end_time" not in raw_hangup and "direction" not in raw_hangup
    assert (hangup.payload.hangup_cause, hangup.payload.hangup_source) == (
        "normal_clearing",
        "caller",
    )
    assert all(isinstance(v, str) for v in raw_hangup["call_quality_stats"]["inbound"].values())

    for sock, level in ((rx, 1000), (tx, -3000)):
        packets = _drain(sock)
        assert len(packets) >= 25  # about 0.75 s of 20 ms packets
        headers = [struct.unpack("!BBHII", p[:12]) for p in packets]
        assert all(h[0] == 0x80 and h[1] & 0x7F == 0 for h in headers)  # RTP v2, PCMU
        assert headers[0][1] & 0x80 and not any(
            h[1] & 0x80 for h in headers[1:]
        )  # marker on the first only
        assert len({h[4] for h in headers}) == 1
        assert all((b[2] - a[2]) % 65536 == 1 for a, b in itertools.pairwise(headers))
        assert all((b[3] - a[3]) % 2**32 == 160 for a, b in itertools.pairwise(headers))
        assert all(len(p) == 12 + 160 for p in packets)
        assert abs(int(np.median(ulaw_decode(packets[3][12:]))) - level) < abs(level) * 0.05
    assert player.forks[0].streams["inbound"].ssrc != player.forks[0].streams["outbound"].ssrc
    assert player.call.state == "ended"


async def test_websocket_stream_speaks_telnyx_media_protocol_and_echoes_marks(
    fake: Fake, sdk: telnyx.AsyncTelnyx, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    receiver = WebhookReceiver()

    async def playback(send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        await send(
            {"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 800).decode()}}
        )  # 100 ms
        await send({"event": "mark", "mark": {"name": "after-audio"}})
        await asyncio.sleep(0.2)
        await send(
            {"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 8000).decode()}}
        )  # 1 s
        await send({"event": "mark", "mark": {"name": "cleared"}})
        await send({"event": "clear"})

    endpoint = MediaEndpoint(playback)
    rx, tx = udp_pair
    async with serve(endpoint.app()) as media_url:

        async def stack(sdk: telnyx.AsyncTelnyx, cid: str, answered: dict[str, Any]) -> None:
            await sdk.calls.actions.start_forking(
                cid,
                rx=f"udp:127.0.0.1:{rx.getsockname()[1]}",
                tx=f"udp:127.0.0.1:{tx.getsockname()[1]}",
                stream_type="decrypted",
            )
            await sdk.calls.actions.start_streaming(  # replaces the fork: one media operation per call
                cid,
                stream_url=media_url.replace("http", "ws") + "/ws",
                stream_track="both_tracks",
                stream_auth_token="secret-token",
                stream_bidirectional_mode="rtp",
                custom_parameters=[{"name": "tenant", "value": "acme"}],
            )
            await sdk.calls.actions.start_transcription(
                cid,
                transcription_engine="Google",
                transcription_engine_config={"interim_results": True},  # type: ignore[typeddict-item]
            )

        player, _ = await _play(fake, sdk, receiver, CallSpec(duration=1.0, script=SCRIPT), stack)
        await asyncio.wait_for(endpoint.closed.wait(), 2)

    assert endpoint.handshake["x-telnyx-streaming-auth-token"] == "secret-token"
    frames = endpoint.frames
    assert frames[0] == {
        "event": "connected",
        "version": "1.0.0",
        "x-telnyx-streaming-auth-token": "secret-token",
    }
    start = frames[1]
    assert start["event"] == "start" and start["sequence_number"] == "1"
    assert start["start"]["call_control_id"] == player.call.call_control_id
    assert start["start"]["custom_parameters"] == {"tenant": "acme"}
    assert start["start"]["media_format"] == {
        "encoding": "PCMU",
        "sample_rate": 8000,
        "channels": 1,
    }
    media = [f for f in frames if f["event"] == "media"]
    assert {f["media"]["track"] for f in media} == {"inbound", "outbound"}
    assert all(
        isinstance(f["sequence_number"], str) and isinstance(f["media"]["chunk"], str)
        for f in media
    )
    assert all(
        isinstance(f["media"]["timestamp"], str)
        and len(base64.b64decode(f["media"]["payload"])) == 160
        for f in media
    )
    sequence = [int(f["sequence_number"]) for f in frames[1:]]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    assert len(media) >= 2 * 35
    assert frames[-1]["event"] == "stop" and frames[-1]["stream_id"] == start["stream_id"]

    stream = player.streams[0]
    assert [f["event"] for f in stream.received] == ["media", "mark", "media", "mark", "clear"]
    assert stream.echoed_marks == ["after-audio", "cleared"]

    types = [got.event_type for got in receiver.received]
    assert (
        types.index("call.fork.started")
        < types.index("call.fork.stopped")
        < types.index("streaming.started")
    )
    assert types.index("streaming.stopped") < types.index("call.hangup")
    transcripts = [
        t["data"]["payload"]["transcription_data"] for t in receiver.of_type("call.transcription")
    ]
    assert [(t["transcript"], t["is_final"]) for t in transcripts] == [
        ("I would like", False),
        ("I would like to check my order", True),
    ]  # inbound only (the default track), interim then final
    assert all(
        "transcription_track" not in t for t in transcripts
    )  # engine A/Google does not send it


async def test_stream_that_cannot_connect_sends_streaming_failed(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    receiver = WebhookReceiver()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()

    async def stack(sdk: telnyx.AsyncTelnyx, cid: str, answered: dict[str, Any]) -> None:
        await sdk.calls.actions.start_streaming(cid, stream_url=f"ws://127.0.0.1:{port}/ws")

    await _play(fake, sdk, receiver, CallSpec(duration=0.3), stack)
    [failed] = receiver.of_type("streaming.failed")
    assert failed["data"]["payload"]["stream_params"] == {"stream_url": f"ws://127.0.0.1:{port}/ws"}
    assert failed["data"]["payload"]["stream_type"] == "websocket"
    assert not receiver.of_type("streaming.started")


async def test_failed_deliveries_are_retried_and_some_redelivered_with_the_same_id(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    receiver = WebhookReceiver(statuses={"call.initiated": [500, 302]})

    async def hang_up(sdk: telnyx.AsyncTelnyx, cid: str, answered: dict[str, Any]) -> None:
        await sdk.calls.actions.hangup(cid)

    policy = DeliveryPolicy(backoff=0.01, redeliver_probability=1.0, redeliver_delay=0.01)
    player, _ = await _play(fake, sdk, receiver, CallSpec(duration=5.0), hang_up, policy)

    initiated = receiver.of_type("call.initiated")
    assert [i["meta"]["attempt"] for i in initiated] == [
        1,
        2,
        3,
        4,
    ]  # 500, 302, 200, then a re-delivery
    assert len({i["data"]["id"] for i in initiated}) == 1
    answered = receiver.of_type("call.answered")
    assert [a["meta"]["attempt"] for a in answered] == [1, 2] and answered[0]["data"] == answered[
        1
    ]["data"]
    hangup = receiver.of_type("call.hangup")[0]["data"]["payload"]
    assert (hangup["hangup_source"], hangup["hangup_cause"]) == ("callee", "normal_clearing")
    statuses = [
        (d.event_type, d.attempt, d.status)
        for d in player.webhooks.deliveries
        if d.event_type == "call.initiated"
    ]
    assert statuses == [
        ("call.initiated", 1, 500),
        ("call.initiated", 2, 302),
        ("call.initiated", 3, 200),
        ("call.initiated", 4, 200),
    ]


async def test_legacy_target_wraps_both_legs_in_strep_headers(
    fake: Fake, sdk: telnyx.AsyncTelnyx, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    target, _ = udp_pair

    async def stack(sdk: telnyx.AsyncTelnyx, cid: str, answered: dict[str, Any]) -> None:
        await sdk.calls.actions.start_forking(
            cid, extra_body={"target": f"udp:127.0.0.1:{target.getsockname()[1]}"}
        )

    player, _ = await _play(fake, sdk, WebhookReceiver(), CallSpec(duration=0.2), stack)
    packets = _drain(target)
    directions = {p[0] & 0x01 for p in packets}
    assert directions == {0, 1}  # D bit: received by Telnyx (inbound), transmitted (outbound)
    assert all(p[0] >> 6 == 0b11 and (p[0] >> 2) & 0x0F == 1 and p[1] == 24 for p in packets)
    assert all(uuid.UUID(bytes=p[8:24]) == uuid.UUID(player.call.call_leg_id) for p in packets)
    assert all(p[24] == 0x80 for p in packets)  # the RTP header follows
