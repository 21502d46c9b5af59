"""The SDK's Client against a real Redis, a real transcript indexer executing commands, and the fake
Telnyx API: each outcome kind comes back from `command`, a re-sent command is answered without a
second execution, no executor is one clear error; playback entries are what media_ingest reads."""

import base64
import struct
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import API_KEY, Fake
from tests.transcript_indexer.harness import indexer_settings, running_indexer
from voicetap_sdk import Client, NoOutcome, topics
from voicetap_sdk.commands import TranscriptionStart, TranscriptionStop
from voicetap_sdk.media_events import PlaybackRequest


async def test_command_returns_each_outcome_kind(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    live = fake.state.create_call()
    fake.state.answer_call(live.call_control_id)
    ended = fake.state.create_call()
    fake.state.answer_call(ended.call_control_id)
    fake.state.end_call(ended.call_control_id)
    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        telnyx_api_key=API_KEY,
        telnyx_base_url=f"{fake.url}/v2",
    )
    async with running_indexer(settings), Client(redis_url, partitions=1) as client:
        start = TranscriptionStart(
            call_control_id=live.call_control_id, transcription_engine="B", correlation_id="c-1"
        )
        done = await client.command(start, timeout=20)
        assert done.ok and done.error is None and done.command_id == start.id
        assert done.correlation_id == "c-1"

        unknown = await client.command(TranscriptionStop(call_control_id="v3:nope"), timeout=20)
        assert not unknown.ok and unknown.error == "unknown_call" and unknown.detail

        gone = await client.command(
            TranscriptionStop(call_control_id=ended.call_control_id), timeout=20
        )
        assert not gone.ok and gone.error == "call_ended"

        again = await client.command(start, timeout=20)  # the same command (same id), re-sent
        assert again == done
        assert len(fake.state.requests_for(live.call_control_id, "transcription_start")) == 1
        assert not await client.send(start), "already sent: not published again"


async def test_without_an_executor_there_is_no_outcome_and_one_clear_error(
    redis: Redis, redis_url: str
) -> None:
    async with Client(redis_url, partitions=1) as client:
        with pytest.raises(NoOutcome, match="is the service that executes it"):
            await client.command(TranscriptionStop(call_control_id="v3:c"), timeout=0.5)
    [(_, fields)] = await redis.xrange(topics.TRANSCRIPTION_COMMANDS)
    assert fields[b"type"] == b"transcription_stop" and fields[b"call_control_id"] == b"v3:c"


async def test_play_clear_and_mark_write_what_media_ingest_reads(
    redis: Redis, redis_url: str
) -> None:
    rate = 8000
    samples = list(range(-300, 300)) * 160  # 12 s: two messages of at most 10 s
    pcm16 = struct.pack(f"<{len(samples)}h", *samples)
    async with Client(redis_url, partitions=1) as client:
        await client.clear("v3:c")
        await client.play("v3:c", pcm16, rate, mark="said")
        await client.mark("v3:c", "later")
        with pytest.raises(ValueError, match="one of"):
            await client.play("v3:c", pcm16, 11025)
        assert topics.MEDIA_PLAYBACK in await client.topics()
    entries = await redis.xrange(topics.MEDIA_PLAYBACK)
    assert all(fields[b"call_control_id"] == b"v3:c" for _, fields in entries)
    requests = [PlaybackRequest.model_validate_json(fields[b"event"]) for _, fields in entries]
    assert [(r.clear, r.mark, r.payload is not None) for r in requests] == [
        (True, None, False),
        (False, None, True),
        (False, "said", True),
        (False, "later", False),
    ]
    audio = b"".join(base64.b64decode(r.payload or "") for r in requests)
    assert len(requests[1].payload or "") > 0
    assert list(struct.unpack(f">{len(samples)}h", audio)) == samples, "L16: big-endian"
