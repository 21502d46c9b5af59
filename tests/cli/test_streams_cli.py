"""`voicetap tail` and `voicetap replay` against a real Redis, run as a user runs them."""

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


def voicetap(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([VOICETAP, *args], env=env, capture_output=True, text=True, timeout=60)


async def test_tail_prints_entries_with_their_json(redis: Redis, redis_url: str) -> None:
    await redis.xadd(
        "telnyx.call.hangup",
        {"id": "ev-1", "type": "call.hangup", "event": b'{"data":{"id":"ev-1"}}'},
    )
    await redis.xadd("voicetap.media.audio", {"id": "a-1", "type": "audio", "pcm": b"\xff\xfe\x00"})
    done = voicetap(
        redis_url,
        "tail",
        "telnyx.call.hangup",
        "voicetap.media.audio",
        "--from",
        "beginning",
        "--count",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "── telnyx.call.hangup" in done.stdout
    assert '"id": "ev-1"' in done.stdout  # the event JSON, pretty-printed
    assert "pcm: <3 bytes>" in done.stdout  # binary fields are not dumped


async def test_tail_follows_several_topics_live_and_prints_every_entry_once(
    redis: Redis, redis_url: str
) -> None:
    """Entries written fast to several topics, one of them created after tail started, all show up
    exactly once: no topic loses what it got between two reads before its first entry arrived."""
    existing = ["tail.a", "tail.b", "tail.c"]
    late = "tail.late"  # does not exist when tail starts
    for topic in existing:
        await redis.xadd(
            topic, {"n": f"{topic}:before"}
        )  # before the start: not shown (--from now)
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", *existing, late,
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    shown: list[tuple[str, str]] = []  # (topic, n) in the order printed
    written: list[tuple[str, str]] = []

    async def read_entries() -> None:
        assert process.stdout is not None
        topic = ""
        async for raw in process.stdout:
            line = raw.decode()
            if header := re.match(r"── (\S+) ", line):
                topic = header[1]
            elif value := re.match(r" {3}n: (\S+)", line):
                shown.append((topic, value[1]))

    reader = asyncio.create_task(read_entries())
    try:
        ready = await asyncio.wait_for(process.stderr.readline(), 30)
        assert ready.startswith(b"following tail.a, tail.b, tail.c, tail.late"), ready
        rng = random.Random(5)
        for batch in range(40):
            if batch == 10:
                existing.append(late)  # its first entry: the topic is created now
            pipe = redis.pipeline(transaction=False)
            for _ in range(50):
                topic = rng.choice(existing)
                n = f"{topic}:{len(written)}"
                pipe.xadd(topic, {"n": n})
                written.append((topic, n))
            await pipe.execute()
            await asyncio.sleep(rng.choice((0, 0, 0.001, 0.003)))  # bursts, some between two reads
        deadline = time.monotonic() + 20
        while len(shown) < len(written) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything printed twice would arrive by now
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        await reader
    assert len(written) == 2000 and {t for t, _ in written} == {"tail.a", "tail.b", "tail.c", late}
    shown_once, written_once = set(shown), set(written)
    missing = [entry for entry in written if entry not in shown_once]
    assert not missing, (
        f"{len(missing)} of {len(written)} entries never shown, the first: {missing[:5]}"
    )
    assert [entry for entry in shown if entry not in written_once] == [], (
        "entries from before the start shown"
    )
    assert [entry for entry, n in Counter(shown).items() if n > 1] == [], (
        "entries shown more than once"
    )
    for topic in ("tail.a", "tail.b", "tail.c", late):  # each topic in the order it was written
        assert [n for t, n in shown if t == topic] == [n for t, n in written if t == topic]


async def test_replay_rewinds_a_group(redis: Redis, redis_url: str) -> None:
    ids = [await redis.xadd("telnyx.call.answered", {"id": f"ev-{i}"}) for i in range(3)]
    await redis.xgroup_create("telnyx.call.answered", "g", id="$")
    again = voicetap(
        redis_url, "replay", "telnyx.call.answered", "--group", "g", "--from", "beginning"
    )
    assert again.returncode == 0
    reread = await redis.xreadgroup("g", "c", {"telnyx.call.answered": ">"})
    assert [entry_id for entry_id, _ in reread[0][1]] == ids


# Entries a millisecond apart, two in the middle millisecond: 1700000001000 is 2023-11-14T22:13:21Z.
TIMED_IDS = ["1700000000000-0", "1700000001000-0", "1700000001000-1", "1700000002000-0"]


@pytest.mark.parametrize(
    ("start", "first"),
    [
        ("1700000001000-0", 1),  # an entry id: that entry is re-processed
        ("1700000001000-1", 2),  # an entry with a sequence number above 0
        ("1700000001000", 1),  # an id without its sequence number: the millisecond's first entry
        ("2023-11-14T22:13:21Z", 1),  # a time: the first entry at or after it
        ("2023-11-14T23:13:21+01:00", 1),  # the same time in another zone
        ("2023-11-14T22:13:20.999Z", 1),  # just before an entry: that entry
        ("2023-11-14T22:13:21.0005Z", 3),  # just after the millisecond of two entries: the next one
    ],
)
async def test_replay_from_an_id_or_a_time_includes_that_entry(
    redis: Redis, redis_url: str, start: str, first: int
) -> None:
    for entry_id in TIMED_IDS:
        await redis.xadd("telnyx.call.answered", {"id": entry_id}, id=entry_id)
    await redis.xgroup_create("telnyx.call.answered", "g", id="$")
    done = voicetap(redis_url, "replay", "telnyx.call.answered", "--group", "g", "--from", start)
    assert done.returncode == 0, done.stderr
    assert f"will read entries from {start} on, that entry included" in done.stdout
    reread = await redis.xreadgroup("g", "c", {"telnyx.call.answered": ">"})
    assert [entry_id.decode() for entry_id, _ in reread[0][1]] == TIMED_IDS[first:]


def test_replay_says_that_from_is_inclusive() -> None:
    done = subprocess.run(
        [VOICETAP, "replay", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "re-processes entry ID itself" in " ".join(done.stdout.split()), done.stdout


def test_a_start_that_is_neither_id_nor_time_is_refused_as_an_argument(redis_url: str) -> None:
    done = voicetap(redis_url, "tail", "t", "--from", "yesterday")
    assert done.returncode == 2
    assert (
        "argument --from: not an entry id, 'beginning', 'now' or an ISO time: 'yesterday'"
        in done.stderr
    )


async def test_replay_names_an_unknown_group(redis: Redis, redis_url: str) -> None:
    await redis.xadd("telnyx.call.answered", {"id": "x"})
    done = voicetap(
        redis_url, "replay", "telnyx.call.answered", "--group", "nope", "--from", "beginning"
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "voicetap replay: no group 'nope' on telnyx.call.answered (groups: none; "
    ), done.stderr


async def test_tail_of_a_topic_that_does_not_exist_says_so_and_follows_it(
    redis: Redis, redis_url: str
) -> None:
    await redis.xadd("telnyx.call.answered", {"id": "a"})
    await redis.xadd("telnyx.call.hangup", {"id": "h"})
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", "telnyx.call.answerd", "--count", "1",
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        following = await asyncio.wait_for(process.stderr.readline(), 30)
        assert following.startswith(b"following telnyx.call.answerd from now"), following
        note = await asyncio.wait_for(process.stderr.readline(), 30)
        assert note.decode().rstrip("\n") == (
            "there is no topic telnyx.call.answerd yet; did you mean telnyx.call.answered? "
            "following it in case it appears"
        )
        await redis.xadd("telnyx.call.answerd", {"id": "late"})  # it appears: its entry is shown
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0
    assert out.decode().startswith("── telnyx.call.answerd "), out
    assert "   id: late" in out.decode()


async def test_tail_of_a_missing_topic_with_nothing_close_suggests_nothing(
    redis: Redis, redis_url: str
) -> None:
    await redis.xadd("telnyx.call.answered", {"id": "a"})
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", "orders", "--count", "1",
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        await asyncio.wait_for(process.stderr.readline(), 30)
        note = await asyncio.wait_for(process.stderr.readline(), 30)
        assert note == b"there is no topic orders yet; following it in case it appears\n"
    finally:
        process.kill()
        await process.wait()


async def test_tail_of_a_topic_without_its_prefix_suggests_the_full_name(
    redis: Redis, redis_url: str
) -> None:
    await redis.xadd("telnyx.call.hangup", {"id": "h"})
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "tail", "call.hangup",
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        await asyncio.wait_for(process.stderr.readline(), 30)
        note = await asyncio.wait_for(process.stderr.readline(), 30)
        assert note == (
            b"there is no topic call.hangup yet; did you mean telnyx.call.hangup? "
            b"following it in case it appears\n"
        )
    finally:
        process.kill()
        await process.wait()
