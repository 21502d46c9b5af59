"""`voicetap topics` as a user runs it: the table's numbers for a stream prepared to known values."""

import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

VOICETAP = str(Path(sys.executable).with_name("voicetap"))

# One entry a minute from 2023-11-14 22:13:20 UTC (the table shows UTC).
IDS = [f"{1_700_000_000_000 + minute * 60_000}-0" for minute in range(5)]


def topics_table(redis_url: str, *args: str) -> list[list[str]]:
    """The rows of `voicetap topics`, split into cells (a time is two cells: date and time)."""
    done = subprocess.run(
        [VOICETAP, "topics", *args],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "TOPIC",
        "LENGTH",
        "FIRST",
        "LAST",
        "GROUP",
        "CONSUMERS",
        "PENDING",
        "LAG",
    ], done.stdout
    return [line.split() for line in lines[1:]]


async def test_topics_shows_length_time_span_and_each_groups_pending_and_lag(
    redis: Redis, redis_url: str
) -> None:
    topic = "telnyx.call.answered"
    for entry_id in IDS:
        await redis.xadd(topic, {"id": entry_id}, id=entry_id)
    # "indexer": read 4 of the 5 entries, acknowledged 1 -> 3 pending, 1 not yet read.
    await redis.xgroup_create(topic, "indexer", id="0")
    read = await redis.xreadgroup("indexer", "worker-1", {topic: ">"}, count=4)
    assert len(read[0][1]) == 4
    await redis.xack(topic, "indexer", IDS[0])
    # "archiver": two consumers, one entry read and acknowledged each -> nothing pending, 3 not read.
    await redis.xgroup_create(topic, "archiver", id="0")
    for consumer in ("a-1", "a-2"):
        reply = await redis.xreadgroup("archiver", consumer, {topic: ">"}, count=1)
        await redis.xack(topic, "archiver", reply[0][1][0][0])
    await redis.xadd("telnyx.call.hangup", {"id": "h"}, id=IDS[2])  # a topic without groups
    await redis.xgroup_create(
        "voicetap.recording.completed", "indexer", id="$", mkstream=True
    )  # empty
    await redis.set("not-a-topic", "x")

    assert topics_table(redis_url) == [
        [topic, "5", "2023-11-14", "22:13:20", "2023-11-14", "22:17:20", "archiver", "2", "0", "3"],
        ["indexer", "1", "3", "1"],
        ["telnyx.call.hangup", "1", "2023-11-14", "22:15:20", "2023-11-14", "22:15:20", "-"],
        ["voicetap.recording.completed", "0", "-", "-", "indexer", "0", "0", "0"],
    ]
    assert topics_table(redis_url, "--pattern", "telnyx.call.h*") == [
        ["telnyx.call.hangup", "1", "2023-11-14", "22:15:20", "2023-11-14", "22:15:20", "-"],
    ]


async def test_topics_on_an_empty_redis_says_so(redis: Redis, redis_url: str) -> None:
    done = subprocess.run(
        [VOICETAP, "topics"],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no topics yet: they appear with the first event (play a call"), (
        done.stdout
    )


async def test_internal_streams_are_listed_only_with_all(redis: Redis, redis_url: str) -> None:
    await redis.xadd("telnyx.call.answered", {"id": "a"}, id=IDS[0])
    await redis.xadd("{voicetap.transcript.live}:v3:call-1", {"id": "s"}, id=IDS[1])
    await redis.xadd("{voicetap.ingest}:inbox:ingest-1", {"id": "f"}, id=IDS[2])
    assert [row[0] for row in topics_table(redis_url)] == ["telnyx.call.answered"]
    assert [row[0] for row in topics_table(redis_url, "--all")] == [
        "telnyx.call.answered",
        "{voicetap.ingest}:inbox:ingest-1",
        "{voicetap.transcript.live}:v3:call-1",
    ]
