"""The PCI pause example against a real Redis: one pause per mention window, one resume, never doubled."""

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from voicetap_common.commands import parse_command

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "pci_pause"))
from pci_pause import COMMAND_TOPIC, SOURCE_TOPIC, PciPause  # noqa: E402


@pytest.fixture
def client(redis: AsyncRedis, redis_url: str) -> Iterator[Redis]:
    with Redis.from_url(redis_url) as sync_client:
        yield sync_client


def say(client: Redis, event_id: str, transcript: str, call: str = "v3:call-1", is_final: bool = False) -> None:
    body = {"data": {"event_type": "call.transcription", "id": event_id, "payload": {
        "call_control_id": call, "transcription_data": {"transcript": transcript, "is_final": is_final}}}}
    client.xadd(SOURCE_TOPIC, {"id": event_id, "type": "call.transcription", "event": json.dumps(body)})


def commands(client: Redis) -> list[tuple[str, str]]:
    parsed = [parse_command(fields[b"event"]) for _, fields in client.xrange(COMMAND_TOPIC)]
    return [(c.action, c.call_control_id) for c in parsed]


def test_pauses_once_then_resumes_once(client: Redis) -> None:
    first, second = (PciPause(client, pause_seconds=0.3, consumer=name, start="beginning") for name in ("a", "b"))
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
