"""`voicetap tail` and `voicetap topics` on a three-node Redis Cluster (REDIS_CLUSTER=true), run
as a user runs them."""

import asyncio
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

from redis.asyncio import RedisCluster

from tests.cli.test_streams_cli import VOICETAP

# On the test cluster these hash to slots of all three nodes.
TOPICS = [
    "telnyx.call.answered",
    "telnyx.call.hangup",
    "telnyx.call.fork.stopped",
    "telnyx.streaming.failed",
]


def cluster_env(url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": url, "REDIS_CLUSTER": "true"}


async def test_tail_follows_topics_on_every_node_and_prints_each_entry_once(
    redis_cluster: RedisCluster, redis_cluster_url: str
) -> None:
    assert {redis_cluster.get_node_from_key(t).name for t in TOPICS} == {
        n.name for n in redis_cluster.get_primaries()
    }
    for topic in TOPICS:
        await redis_cluster.xadd(topic, {"n": f"{topic}:before"})
    later = [(topic, f"{topic}:{i}") for i in range(5) for topic in TOPICS]
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", *TOPICS, "--from", "beginning", "--count", str(len(TOPICS) + len(later)),
        env=cluster_env(redis_cluster_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    assert b"following" in await asyncio.wait_for(process.stderr.readline(), 30)
    for topic, n in later:  # written while it follows
        await redis_cluster.xadd(topic, {"n": n})
        await asyncio.sleep(0.01)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    shown = re.findall(r"── (\S+) .*\n {3}n: (\S+)", stdout.decode())
    assert Counter(shown) == Counter([(topic, f"{topic}:before") for topic in TOPICS] + later)


async def test_topics_lists_the_streams_of_every_node(
    redis_cluster: RedisCluster, redis_cluster_url: str
) -> None:
    for topic in TOPICS:
        await redis_cluster.xadd(topic, {"n": "1"})
    done = await asyncio.create_subprocess_exec(
        VOICETAP,
        "topics",
        env=cluster_env(redis_cluster_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(done.communicate(), 30)
    assert done.returncode == 0, stderr.decode()
    listed = {line.split()[0] for line in stdout.decode().splitlines()[1:]}
    assert listed == set(TOPICS)


def test_up_refuses_a_cluster_without_a_node_to_reach(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(REDIS_CLUSTER="true", VOICETAP_DATA_DIR=str(tmp_path))
    done = subprocess.run([VOICETAP, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "REDIS_CLUSTER needs REDIS_URL" in done.stdout + done.stderr
