"""The PCI pause example against a real Redis: one pause per mention window, one resume, never doubled."""

import asyncio
import json
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from voicetap_sdk import Subscriber
from voicetap_sdk.commands import parse_command
from voicetap_sdk.partitions import stream_for, streams_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "pci_pause"))
import pci_pause  # noqa: E402

SOURCE_TOPIC = "telnyx.call.transcription"
COMMAND_TOPIC = "voicetap.command.media"


def pauser(redis_url: str, pause_seconds: float, **options: object) -> Subscriber:
    """The example on a Subscriber, as its `main` builds it (a new group reads from the start)."""
    values: dict[str, object] = {"group": "pci_pause", "start": "beginning", "partitions": 1}
    sub = Subscriber(redis_url, **{**values, **options})  # type: ignore[arg-type]
    pci_pause.pause_recordings(sub, pause_seconds, pci_pause.PHRASES)
    return sub


async def run_once(sub: Subscriber) -> int:
    try:
        return await sub.process_available()
    finally:
        await sub.close()


async def resume_due(redis_url: str) -> None:
    """The example's timer, once (what `every` runs while the pauser serves)."""
    sub = Subscriber(redis_url, group="pci_pause", partitions=1)
    try:
        await pci_pause.send_due_resumes(sub)
    finally:
        await sub.close()


async def say(
    redis: Redis,
    event_id: str,
    transcript: str,
    call: str = "v3:call-1",
    is_final: bool = False,
    partitions: int = 1,
) -> None:
    """Append a transcription as the gateway does: with partitions, to its call's partition stream."""
    body = {
        "data": {
            "event_type": "call.transcription",
            "id": event_id,
            "payload": {
                "call_control_id": call,
                "transcription_data": {"transcript": transcript, "is_final": is_final},
            },
        }
    }
    fields = {"id": event_id, "type": "call.transcription", "event": json.dumps(body)}
    if partitions > 1:
        fields["call_control_id"] = call
    await redis.xadd(stream_for(SOURCE_TOPIC, call, partitions), fields)


async def commands(redis: Redis) -> list[tuple[str, str]]:
    parsed = [parse_command(fields[b"event"]) for _, fields in await redis.xrange(COMMAND_TOPIC)]
    return [(c.action, c.call_control_id) for c in parsed]


async def test_pauses_once_then_resumes_once(redis: Redis, redis_url: str) -> None:
    await say(redis, "e1", "let me read you my card")
    await say(redis, "e2", "my card number is")  # interim result: react now
    await say(redis, "e3", "MY CARD   NUMBER is four two", is_final=True)  # the same words, final
    await say(redis, "e4", "card number again", call="v3:call-2", is_final=True)
    first, second = (pauser(redis_url, 0.3, consumer=name, batch_size=1) for name in ("a", "b"))
    await asyncio.gather(run_once(first), run_once(second))  # two copies share the group
    assert await commands(redis) == [("fork_stop", "v3:call-1"), ("fork_stop", "v3:call-2")]
    await resume_due(redis_url)
    assert len(await commands(redis)) == 2, "not due yet"
    await asyncio.sleep(0.35)
    await asyncio.gather(resume_due(redis_url), resume_due(redis_url))
    assert (await commands(redis))[2:] == [("fork_start", "v3:call-1"), ("fork_start", "v3:call-2")]
    await say(redis, "e5", "what was the card number", is_final=True)  # a new mention, resumed
    await run_once(pauser(redis_url, 0.3, consumer="b"))
    assert (await commands(redis))[4:] == [("fork_stop", "v3:call-1")]


async def test_every_command_is_valid_for_media_ingest(redis: Redis, redis_url: str) -> None:
    await say(redis, "e1", "the security code is", is_final=True)
    await run_once(pauser(redis_url, 0))
    await run_once(pauser(redis_url, 0))  # a redelivery or a second run sends nothing new
    await resume_due(redis_url)
    entries = await redis.xrange(COMMAND_TOPIC)
    assert [fields[b"type"] for _, fields in entries] == [b"fork_stop", b"fork_start"]
    for _, fields in entries:
        command = parse_command(fields[b"event"])  # the contract media_ingest parses
        assert fields[b"id"].decode() == command.id and command.correlation_id == "pci:e1"
        assert fields[b"call_control_id"].decode() == command.call_control_id


async def test_the_timer_runs_while_the_pauser_serves(redis: Redis, redis_url: str) -> None:
    await say(redis, "e1", "my card number is")
    sub = pauser(redis_url, 0.2, block_ms=100)
    stop = asyncio.Event()
    serving = asyncio.create_task(sub.serve(stop))

    async def resumed() -> bool:
        return ("fork_start", "v3:call-1") in await commands(redis)

    try:
        for _ in range(100):
            if await resumed():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)
    assert await commands(redis) == [("fork_stop", "v3:call-1"), ("fork_start", "v3:call-1")]


# With TOPIC_PARTITIONS=4: calls 0..7 fall on every partition, two calls each.
PARTITIONS = 4
CALLS = [f"v3:call-{n}" for n in range(8)]


async def pending_per_partition(redis: Redis) -> list[int]:
    return [
        int((await redis.xpending(stream, "pci_pause"))["pending"])
        for stream in streams_of(SOURCE_TOPIC, PARTITIONS)
    ]


async def test_partitions_pause_and_resume_each_call_once(redis: Redis, redis_url: str) -> None:
    for n, call in enumerate(CALLS):
        await say(redis, f"e{n}-1", "my card number is", call=call, partitions=PARTITIONS)
        await say(
            redis, f"e{n}-2", "MY CARD NUMBER is four", call=call, is_final=True, partitions=4
        )
    assert not await redis.exists(SOURCE_TOPIC)
    first, second = (
        pauser(redis_url, 0.3, consumer=name, batch_size=1, partitions=PARTITIONS)
        for name in ("a", "b")
    )
    counts = await asyncio.gather(run_once(first), run_once(second))
    assert sum(counts) == 2 * len(CALLS)
    assert await pending_per_partition(redis) == [0] * PARTITIONS
    assert sorted(await commands(redis)) == sorted(("fork_stop", call) for call in CALLS)
    await asyncio.sleep(0.35)
    await asyncio.gather(resume_due(redis_url), resume_due(redis_url))
    assert sorted((await commands(redis))[len(CALLS) :]) == sorted(
        ("fork_start", call) for call in CALLS
    )
    assert not await redis.keys(f"{COMMAND_TOPIC}:p*"), "commands are never partitioned"


async def test_partitions_pending_entries_are_handled_first_on_every_partition(
    redis: Redis, redis_url: str
) -> None:
    for n, call in enumerate(CALLS):
        await say(redis, f"e{n}", "the security code is", call=call, is_final=True, partitions=4)
    streams = streams_of(SOURCE_TOPIC, PARTITIONS)
    for stream in streams:
        await redis.xgroup_create(stream, "pci_pause", id="0")
    await redis.xreadgroup("pci_pause", "a", dict.fromkeys(streams, ">"), count=10)  # then a crash
    assert await pending_per_partition(redis) == [2] * PARTITIONS
    await say(redis, "late", "the card number", call="v3:late", is_final=True, partitions=4)

    restarted = pauser(redis_url, 60, consumer="a", claim_idle_ms=0, partitions=PARTITIONS)
    assert await run_once(restarted) == len(CALLS) + 1
    assert await pending_per_partition(redis) == [0] * PARTITIONS
    sent = await commands(redis)
    assert sorted(sent[: len(CALLS)]) == sorted(("fork_stop", call) for call in CALLS), (
        "the pending entries, of every partition, first"
    )
    assert sent[len(CALLS) :] == [("fork_stop", "v3:late")]
    assert await run_once(pauser(redis_url, 60, consumer="a", partitions=PARTITIONS)) == 0


def test_partitions_option_defaults_to_topic_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_PARTITIONS", "4")
    assert pci_pause.parse_args([]).partitions is None  # the Subscriber reads the variable
    assert pci_pause.parse_args(["--partitions", "1"]).partitions == 1
    for wrong in ("0", "four"):
        with pytest.raises(SystemExit):
            pci_pause.parse_args(["--partitions", wrong])


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, "redis://127.0.0.1:6399/0"),  # the embedded Redis of `voicetap up`, not 6379
        ({"VOICETAP_EMBEDDED_REDIS_PORT": "6411"}, "redis://127.0.0.1:6411/0"),
        (
            {"REDIS_URL": "redis://redis:6379/2", "VOICETAP_EMBEDDED_REDIS_PORT": "6411"},
            "redis://redis:6379/2",
        ),
    ],
)
def test_the_default_redis_is_the_stacks(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], url: str
) -> None:
    for name in ("REDIS_URL", "VOICETAP_EMBEDDED_REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert pci_pause.parse_args([]).redis_url == url
