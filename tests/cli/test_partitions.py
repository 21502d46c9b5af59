"""`voicetap tail` and `voicetap replay` on a partitioned topic (TOPIC_PARTITIONS=4), on a single
server and on the three-node cluster, run as a user runs them."""

import asyncio
import os
import re
import subprocess
from collections import defaultdict

import pytest
from redis.asyncio import RedisCluster

from tests.cli.test_streams_cli import VOICETAP
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import CALL_HANGUP, CALL_TRANSCRIPTION

N = 4
CALLS = [f"v3:call-{i}" for i in range(10)]


@pytest.fixture
def env(any_redis: RedisClient, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a `voicetap` command on ``any_redis``, with four partitions."""
    if isinstance(any_redis, RedisCluster):
        return {
            **os.environ,
            "REDIS_URL": request.getfixturevalue("redis_cluster_url"),
            "REDIS_CLUSTER": "true",
            "TOPIC_PARTITIONS": str(N),
        }
    return {
        **os.environ,
        "REDIS_URL": request.getfixturevalue("redis_url"),
        "TOPIC_PARTITIONS": str(N),
    }


async def test_tail_follows_every_partition_and_prints_each_entry_once_in_call_order(
    any_redis: RedisClient, env: dict[str, str]
) -> None:
    producer = Producer(any_redis, 10_000, N)
    for call in CALLS:
        await producer.publish(
            CALL_TRANSCRIPTION, f"{call}/before", "call.transcription", b"{}", call_control_id=call
        )
    later = [(call, f"{call}/{i}") for i in range(4) for call in CALLS]
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", CALL_TRANSCRIPTION, "--from", "beginning", "--count", str(len(CALLS) + len(later)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    assert b"following" in await asyncio.wait_for(process.stderr.readline(), 30)
    for call, event_id in later:  # written while it follows
        await producer.publish(
            CALL_TRANSCRIPTION, event_id, "call.transcription", b"{}", call_control_id=call
        )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    shown = re.findall(r"── (\S+) .*\n(?: {3}.*\n)*? {3}id: (\S+)", stdout.decode())
    by_call: dict[str, list[str]] = defaultdict(list)
    for stream, event_id in shown:
        call = event_id.rsplit("/", 1)[0]
        assert stream == stream_for(CALL_TRANSCRIPTION, call, N), (stream, event_id)
        by_call[call].append(event_id)
    assert by_call == {
        call: [f"{call}/before", *(f"{call}/{i}" for i in range(4))] for call in CALLS
    }  # each once, in order
    assert {stream for stream, _ in shown} == set(streams_of(CALL_TRANSCRIPTION, N))


async def test_replay_rewinds_the_group_on_every_partition(
    any_redis: RedisClient, env: dict[str, str]
) -> None:
    producer = Producer(any_redis, 10_000, N)
    for call in CALLS:
        await producer.publish(
            CALL_HANGUP, f"{call}/hangup", "call.hangup", b"{}", call_control_id=call
        )
    for stream in streams_of(CALL_HANGUP, N):
        await any_redis.xgroup_create(stream, "g", id="$", mkstream=True)
    done = await asyncio.create_subprocess_exec(
        VOICETAP,
        "replay",
        CALL_HANGUP,
        "--group",
        "g",
        "--from",
        "beginning",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(done.communicate(), 30)
    assert done.returncode == 0, stderr.decode()
    assert (
        f"group g on {CALL_HANGUP} (each of its {N} partitions) will read every entry"
        in stdout.decode()
    )
    reread = [
        fields[b"id"].decode()
        for stream in streams_of(CALL_HANGUP, N)
        for _, items in await any_redis.xreadgroup("g", "c", {stream: ">"})
        for _, fields in items
    ]
    assert sorted(reread) == sorted(f"{call}/hangup" for call in CALLS)
