"""media_ingest with TOPIC_PARTITIONS=4: lifecycle webhooks read from their partitions start and end
each call's media; its analytics and its ``recording.completed`` go to the call's partition."""

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from telnyx_simulator.audio import CallAudio
from tests.conftest import Fake
from tests.media_ingest.harness import (
    ingest_settings,
    noise,
    publish_webhook,
    running,
    target_port,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import send_fork
from voicetap_sdk import codec
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.topics import CALL_ANSWERED, CALL_HANGUP, MEDIA_ANALYTICS, RECORDING_COMPLETED

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it

N = 4


async def call_events(redis: Redis, stream: str, call_control_id: str) -> list[dict[str, object]]:
    """The events of ``call_control_id`` on ``stream``."""
    return [
        codec.loads(fields[b"event"]) for _, fields in await redis.xrange(stream)
        if fields.get(b"call_control_id") == call_control_id.encode()
    ]  # fmt: skip


async def test_calls_read_from_partitions_publish_on_their_own_partitions(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    calls = [
        fake.state.create_call(call_control_id=f"v3:ingest-partitioned-{i}").call_control_id
        for i in (0, 1, 4)
    ]
    assert len({stream_for(CALL_ANSWERED, ccid, N) for ccid in calls}) == 3, "three partitions read"
    settings = ingest_settings(tmp_path, redis_url, fake.url, topic_partitions=N)
    async with running(settings):
        for ccid in calls:
            await publish_webhook(redis, "call.answered", ccid, partitions=N, state="answered")

        async def fork_requests() -> list[object] | None:
            found = [fake.state.requests_for(ccid, "fork_start") for ccid in calls]
            return [requests[0] for requests in found] if all(found) else None

        requests = await wait_for(fork_requests, what="fork_start of every call")
        await asyncio.gather(*(
            send_fork(CallAudio(noise(1, n), noise(1, n + 10)), target_port(r.body["rx"]), target_port(r.body["tx"]), 0.8)  # type: ignore[attr-defined]
            for n, r in enumerate(requests)
        ))  # fmt: skip
        for ccid in calls:
            await publish_webhook(redis, "call.hangup", ccid, partitions=N)
        for ccid in calls:
            own = stream_for(RECORDING_COMPLETED, ccid, N)
            [event] = await wait_for(
                lambda ccid=ccid, own=own: call_events(redis, own, ccid),
                what=f"recording of {ccid}",
            )
            assert event["duration"] >= 0.7 and event["media"] == ["fork"]  # type: ignore[operator]
            assert await call_events(redis, stream_for(MEDIA_ANALYTICS, ccid, N), ccid), (
                "analytics on the call's partition"
            )
    for topic in (CALL_ANSWERED, CALL_HANGUP, RECORDING_COMPLETED, MEDIA_ANALYTICS):
        assert not await redis.exists(topic)
    for ccid in calls:  # nothing of a call on another partition
        for topic in (RECORDING_COMPLETED, MEDIA_ANALYTICS):
            assert not [
                s
                for s in streams_of(topic, N)
                if s != stream_for(topic, ccid, N) and await call_events(redis, s, ccid)
            ]
