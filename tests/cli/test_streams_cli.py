"""`voicetap tail` and `voicetap replay` against a real Redis, run as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


def voicetap(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([VOICETAP, *args], env=env, capture_output=True, text=True, timeout=60)


async def test_tail_prints_entries_with_their_json(redis: Redis, redis_url: str) -> None:
    await redis.xadd("telnyx.call.hangup", {"id": "ev-1", "type": "call.hangup", "event": b'{"data":{"id":"ev-1"}}'})
    await redis.xadd("voicetap.media.audio", {"id": "a-1", "type": "audio", "pcm": b"\xff\xfe\x00"})
    done = voicetap(redis_url, "tail", "telnyx.call.hangup", "voicetap.media.audio", "--from", "beginning", "--count", "2")
    assert done.returncode == 0, done.stderr
    assert "── telnyx.call.hangup" in done.stdout
    assert '"id": "ev-1"' in done.stdout  # the event JSON, pretty-printed
    assert "pcm: <3 bytes>" in done.stdout  # binary fields are not dumped


async def test_replay_rewinds_a_group(redis: Redis, redis_url: str) -> None:
    ids = [await redis.xadd("telnyx.call.answered", {"id": f"ev-{i}"}) for i in range(3)]
    await redis.xgroup_create("telnyx.call.answered", "g", id="$")
    done = voicetap(redis_url, "replay", "telnyx.call.answered", "--group", "g", "--from", ids[0].decode())
    assert done.returncode == 0, done.stdout
    reread = await redis.xreadgroup("g", "c", {"telnyx.call.answered": ">"})
    assert [fields[b"id"] for _, fields in reread[0][1]] == [b"ev-1", b"ev-2"]

    again = voicetap(redis_url, "replay", "telnyx.call.answered", "--group", "g", "--from", "beginning")
    assert again.returncode == 0
    reread = await redis.xreadgroup("g", "c", {"telnyx.call.answered": ">"})
    assert len(reread[0][1]) == 3


async def test_replay_names_an_unknown_group(redis: Redis, redis_url: str) -> None:
    await redis.xadd("telnyx.call.answered", {"id": "x"})
    done = voicetap(redis_url, "replay", "telnyx.call.answered", "--group", "nope", "--from", "beginning")
    assert done.returncode == 1
    assert "no group 'nope'" in done.stdout
