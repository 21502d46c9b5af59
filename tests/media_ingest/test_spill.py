"""An instance out of port pairs hands a new call to one that has some (a worker whose share of
the host's range is full, or a full host): every answered call gets its fork, none fails."""

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from tests.media_ingest.harness import (
    ingest_settings,
    publish_webhook,
    running,
    target_port,
    topic_events,
    wait_for,
)
from voicetap_sdk.topics import MEDIA_ERROR


async def test_calls_an_instance_has_no_ports_for_go_to_one_that_has(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    small = ingest_settings(tmp_path / "a", redis_url, fake.url, pairs=1, ingest_instance_id="full")
    large = ingest_settings(tmp_path / "b", redis_url, fake.url, pairs=8, ingest_instance_id="room")
    calls = [fake.state.create_call().call_control_id for _ in range(7)]
    async with running(small) as (full, _), running(large) as (room, _):
        for ccid in calls:
            await publish_webhook(redis, "call.answered", ccid, state="answered")

        async def forked() -> bool:
            return all(fake.state.requests_for(ccid, "fork_start") for ccid in calls)

        await wait_for(forked, 15, "a fork for every answered call")
        await asyncio.sleep(0.5)
        assert len(full.calls) == 1 and len(room.calls) == 6  # one pair there, the rest here
        small_range = small.rtp_port_range()
        for ccid in calls:
            [request] = fake.state.requests_for(ccid, "fork_start")
            holder = full if ccid in full.calls else room
            assert ccid in holder.calls
            assert (target_port(request.body["rx"]) in small_range) == (holder is full)
    assert not [e for e in await topic_events(redis, MEDIA_ERROR) if e["kind"] == "ports_exhausted"]
