"""media_ingest on a three-node Redis Cluster: a fork_start command leases ports and a fork_stop
gives them back; an instance forwards what it does not hold to the holder's inbox."""

from pathlib import Path

import pytest
from redis.asyncio import RedisCluster

from media_ingest.keys import GROUP, LIFECYCLE_TOPICS, inbox, owner_key
from media_ingest.ports import LEASE_PREFIX
from tests.media_ingest.harness import (
    ingest_settings,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    target_port,
    wait_for,
)
from tests.media_ingest.test_media_commands import forwarding_between_two_instances
from voicetap_sdk.topics import MEDIA_COMMANDS

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it


async def test_a_fork_start_command_leases_ports_and_fork_stop_releases_them(
    redis_cluster: RedisCluster,
    redis_cluster_url: str,
    fake,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    read = [*LIFECYCLE_TOPICS, MEDIA_COMMANDS, inbox("ingest-c")]
    assert (
        len({redis_cluster.get_node_from_key(topic).name for topic in read}) == 3
    )  # the group reads from every node
    ccid = fake.state.create_call().call_control_id
    settings = ingest_settings(
        tmp_path, redis_cluster_url, fake.url, ingest_instance_id="ingest-c", redis_cluster=True
    )
    async with running(settings) as (service, _):
        started = await run_command(redis_cluster, "fork_start", ccid)
        assert started["ok"] and started["executed_by"] == "media_ingest:ingest-c", started
        lease = f"{LEASE_PREFIX}127.0.0.1:{target_port(started['allocated']['rx'])}"
        assert (
            await redis_cluster.get(lease) == f"ingest-c|{ccid}".encode()
            and service.allocator.in_use == 1
        )
        assert await redis_cluster.get(owner_key(ccid)) == b"ingest-c"

        stopped = await run_command(redis_cluster, "fork_stop", ccid)
        assert stopped["ok"], stopped

        async def released() -> bool:
            return service.allocator.in_use == 0 and not await redis_cluster.exists(lease)

        await wait_for(released, 3, "ports released")
        await publish_webhook(redis_cluster, "call.hangup", ccid, handled=True)
        assert (await recording_completed(redis_cluster, ccid))["instance"] == "ingest-c"
        assert not await redis_cluster.exists(owner_key(ccid))
    for topic in read[:-1]:  # everything read was acknowledged (the inbox went with the instance)
        [group] = [
            g for g in await redis_cluster.xinfo_groups(topic) if g["name"] == GROUP.encode()
        ]
        assert group["pending"] == 0, topic


async def test_an_instance_forwards_what_it_does_not_hold_to_the_holder(
    redis_cluster: RedisCluster,
    redis_cluster_url: str,
    fake,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    await forwarding_between_two_instances(
        redis_cluster, redis_cluster_url, fake, tmp_path, redis_cluster=True
    )
