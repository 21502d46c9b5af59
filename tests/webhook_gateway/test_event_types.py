"""Point 10 of issue 14: an event type the models do not know still gets its topic, but a name
Telnyx would never send never becomes a Redis stream; it is dead-lettered as ``bad_event_type``."""

import re

import httpx
import pytest
from redis.asyncio import Redis

from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from voicetap_sdk.topics import WEBHOOK_DEAD_LETTERS
from webhook_gateway.envelope import MalformedEvent, is_event_type, read_event_key

# Every event type of /work/shared/TELNYX.md, and others Telnyx sends that no model covers.
TELNYX_TYPES = [
    "call.initiated",
    "call.answered",
    "call.hangup",
    "call.fork.started",
    "call.fork.stopped",
    "call.transcription",
    "streaming.started",
    "streaming.stopped",
    "streaming.failed",
    "call.bridged",
    "call.conversation_insights.generated",
    "call.machine.premium.detection.ended",
    "call.ai_gather.partial_results",
    "call.dtmf.received",
]
HOSTILE_TYPES = [
    "../../x",
    "call/../../x",
    "call.transc1iption",  # a fuzzer's mutation: no Telnyx event type has a digit
    "call.answered2",
    "x" * 3000,
    "call." + "a" * 60,  # over 64 characters
    "Call.Answered",
    "CALL.HANGUP",
    "call..answered",
    ".call.answered",
    "call.answered.",
    "call",  # not dotted
    "call.answered ",
    "call answered",
    "call.answered\n",
    "call.answ\u00e9red",
    "call.*",
    "call.{x}",
    "_call.answered",
    "a.b.c.d.e.f.g.h.i",  # more than 8 segments
]


@pytest.mark.parametrize("name", TELNYX_TYPES)
def test_telnyx_event_types_are_names(name: str) -> None:
    assert is_event_type(name)
    assert read_event_key(make_event(name, "ev-1")).event_type == name


@pytest.mark.parametrize("name", HOSTILE_TYPES, ids=lambda n: repr(n[:24]))
def test_hostile_event_types_are_refused(name: str) -> None:
    assert not is_event_type(name)
    with pytest.raises(MalformedEvent) as refused:
        read_event_key(make_event(name, "ev-1"))
    assert refused.value.status == 400
    assert refused.value.reason.startswith("bad_event_type: ")
    assert name not in refused.value.reason  # never echoed: it may be 3,000 characters


async def test_a_signed_hostile_event_type_is_dead_lettered_and_makes_no_topic(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    for n, name in enumerate(["../../x", "call.transc1iption", "x" * 3000]):
        body = make_event(name, f"ev-bad-{n}")
        answer = await gateway.post("/webhooks/telnyx", **signed_post(signer, body))
        assert answer.status_code == 400, answer.text
        assert answer.json()["dead_letter_topic"] == WEBHOOK_DEAD_LETTERS
    dead = await redis.xrange(WEBHOOK_DEAD_LETTERS)
    assert [fields[b"reason"].decode().split(":")[0] for _, fields in dead] == [
        "bad_event_type"
    ] * 3
    for known_or_not in ("call.answered", "call.bridged", "call.answered"):
        body = make_event(known_or_not, f"ev-{known_or_not}-{await redis.dbsize()}")
        assert (
            await gateway.post("/webhooks/telnyx", **signed_post(signer, body))
        ).status_code == 200
    keys = sorted(k.decode() for k in await redis.keys("*") if not k.startswith(b"voicetap."))
    streams = [k for k in keys if await redis.type(k) == b"stream"]
    assert streams == ["telnyx.call.answered", "telnyx.call.bridged"]
    metrics = (await gateway.get("/metrics")).text
    assert re.search(r"^voicetap_gateway_telnyx_topics 2\.0$", metrics, re.MULTILINE), metrics
