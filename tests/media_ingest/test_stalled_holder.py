"""A holder only stalled past the takeover period (not dead) lets the calls another instance took
go at its next beat: no two instances record one call, and its part is stored for the join."""

from pathlib import Path

from redis.asyncio import Redis

from media_ingest.keys import ALIVE, owner_key, parts_key
from tests.media_ingest.harness import ingest_settings, run_command, running, wait_for


async def test_a_stalled_holder_surrenders_what_was_taken_and_keeps_its_part(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    ccid = fake.state.create_call().call_control_id
    shared = tmp_path / "data"  # two workers of one host
    stalled = ingest_settings(shared, redis_url, fake.url, ingest_instance_id="h-w0")
    survivor = ingest_settings(
        shared, redis_url, fake.url, ingest_instance_id="h-w1", ingest_takeover_seconds=60
    )
    async with running(stalled) as (holder, _):
        assert (await run_command(redis, "fork_start", ccid))["ok"]
        async with running(survivor) as (taker, _):
            # h-w0's loop stalls: its last beat looks 2 minutes old to the others
            await redis.zadd(ALIVE, {"h-w0": 0})
            assert await taker.takeover.take_silent() == 1
            assert await redis.get(owner_key(ccid)) == b"h-w1"

            async def surrendered() -> bool:  # at h-w0's next beat (its heartbeat loop)
                return ccid not in holder.calls

            await wait_for(surrendered, 5, "h-w0 to let the call go")
            assert ccid in taker.calls
            assert await holder.ownership.beat() == []  # said once
            await holder.ownership.heartbeat()
            assert await redis.get(owner_key(ccid)) == b"h-w1"  # the heartbeat keeps off it
            await holder.recovery.recover_orphans()  # its part, stored apart for the join

            async def stored() -> bool:
                return bool(await redis.hexists(parts_key(ccid), "1:stored"))

            await wait_for(stored, 5, "h-w0's part stored")
