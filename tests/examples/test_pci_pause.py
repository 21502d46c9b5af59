"""The PCI pause example against a real Redis: one pause per mention window, one resume, never doubled."""

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from voicetap_sdk.commands import parse_command
from voicetap_sdk.partitions import partition_of, stream_for, streams_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "pci_pause"))
import pci_pause  # noqa: E402
from pci_pause import COMMAND_TOPIC, SOURCE_TOPIC, PciPause  # noqa: E402


@pytest.fixture
def client(redis: AsyncRedis, redis_url: str) -> Iterator[Redis]:
    with Redis.from_url(redis_url) as sync_client:
        yield sync_client


def say(
    client: Redis,
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
    client.xadd(stream_for(SOURCE_TOPIC, call, partitions), fields)


def commands(client: Redis) -> list[tuple[str, str]]:
    parsed = [parse_command(fields[b"event"]) for _, fields in client.xrange(COMMAND_TOPIC)]
    return [(c.action, c.call_control_id) for c in parsed]


def test_pauses_once_then_resumes_once(client: Redis) -> None:
    first, second = (
        PciPause(client, pause_seconds=0.3, consumer=name, start="beginning") for name in ("a", "b")
    )
    first.ensure_group()
    say(client, "e1", "let me read you my card")
    say(client, "e2", "my card number is")  # interim result: react now
    say(client, "e3", "MY CARD   NUMBER is four two", is_final=True)  # the final of the same words
    say(client, "e4", "card number again", call="v3:call-2", is_final=True)
    first.run_once(block_ms=10)
    second.run_once(block_ms=10)
    assert commands(client) == [("fork_stop", "v3:call-1"), ("fork_stop", "v3:call-2")]
    time.sleep(0.35)
    first.send_due_resumes()
    second.send_due_resumes()
    assert commands(client)[2:] == [("fork_start", "v3:call-1"), ("fork_start", "v3:call-2")]
    say(client, "e5", "what was the card number", is_final=True)  # a new mention after the resume
    second.run_once(block_ms=10)
    assert commands(client)[4:] == [("fork_stop", "v3:call-1")]


def test_every_command_is_valid_for_media_ingest(client: Redis) -> None:
    pauser = PciPause(client, pause_seconds=0, start="beginning")
    pauser.ensure_group()
    say(client, "e1", "the security code is", is_final=True)
    pauser.run_once(block_ms=10)
    pauser.send_due_resumes()
    entries = client.xrange(COMMAND_TOPIC)
    assert [fields[b"type"] for _, fields in entries] == [b"fork_stop", b"fork_start"]
    for _, fields in entries:
        command = parse_command(fields[b"event"])  # the contract media_ingest parses
        assert fields[b"id"].decode() == command.id and command.correlation_id == "pci:e1"


# With TOPIC_PARTITIONS=4: calls 0..7 fall on every partition, two calls each.
PARTITIONS = 4
CALLS = [f"v3:call-{n}" for n in range(8)]


def pending_per_partition(client: Redis) -> list[int]:
    return [
        client.xpending(stream, "pci_pause")["pending"]
        for stream in streams_of(SOURCE_TOPIC, PARTITIONS)
    ]


def test_the_naming_rule_is_voicetaps() -> None:
    assert {partition_of(call, PARTITIONS) for call in CALLS} == set(range(PARTITIONS))
    for partitions in (1, 2, 4, 7):
        assert pci_pause.topic_streams(SOURCE_TOPIC, partitions) == streams_of(
            SOURCE_TOPIC, partitions
        )


def test_partitions_pause_and_resume_each_call_once(client: Redis) -> None:
    first, second = (
        PciPause(client, pause_seconds=0.3, consumer=name, start="beginning", partitions=PARTITIONS)
        for name in ("a", "b")
    )
    first.ensure_group()
    for n, call in enumerate(CALLS):
        say(
            client, f"e{n}-1", "my card number is", call=call, partitions=PARTITIONS
        )  # interim result: react now
        say(
            client,
            f"e{n}-2",
            "MY CARD NUMBER is four two",
            call=call,
            is_final=True,
            partitions=PARTITIONS,
        )
    assert not client.exists(SOURCE_TOPIC)
    assert first.run_once(block_ms=10) + second.run_once(block_ms=10) == 2 * len(CALLS)
    assert second.run_once(block_ms=10) == 0
    assert pending_per_partition(client) == [0] * PARTITIONS
    assert sorted(commands(client)) == sorted(("fork_stop", call) for call in CALLS)
    time.sleep(0.35)
    first.send_due_resumes()
    second.send_due_resumes()
    assert sorted(commands(client)[len(CALLS) :]) == sorted(("fork_start", call) for call in CALLS)
    assert not client.keys(f"{COMMAND_TOPIC}:p*"), "commands are never partitioned"


def test_partitions_own_pending_entries_are_handled_first_on_every_partition(client: Redis) -> None:
    pauser = PciPause(
        client, pause_seconds=60, consumer="a", start="beginning", partitions=PARTITIONS
    )
    pauser.ensure_group()
    for n, call in enumerate(CALLS):
        say(
            client, f"e{n}", "the security code is", call=call, is_final=True, partitions=PARTITIONS
        )
    streams = dict.fromkeys(streams_of(SOURCE_TOPIC, PARTITIONS), ">")
    client.xreadgroup("pci_pause", "a", streams, count=10)  # received, then a crash before acting
    assert pending_per_partition(client) == [2] * PARTITIONS
    say(client, "late", "the card number", call="v3:late", is_final=True, partitions=PARTITIONS)

    assert pauser.run_once(block_ms=10) == len(CALLS), (
        "the pending entries, of every partition, first"
    )
    assert pending_per_partition(client) == [0] * PARTITIONS
    assert sorted(commands(client)) == sorted(("fork_stop", call) for call in CALLS)
    assert pauser.run_once(block_ms=10) == 1
    assert commands(client)[len(CALLS) :] == [("fork_stop", "v3:late")]
    assert pauser.run_once(block_ms=10) == 0 and len(commands(client)) == len(CALLS) + 1


def test_partitions_option_defaults_to_topic_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPIC_PARTITIONS", raising=False)
    assert pci_pause.parse_args([]).partitions == 1
    monkeypatch.setenv("TOPIC_PARTITIONS", "4")
    assert pci_pause.parse_args([]).partitions == 4
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
def test_the_default_redis_is_the_stacks(environ: dict[str, str], url: str) -> None:
    assert pci_pause.stack_redis_url(environ) == url
