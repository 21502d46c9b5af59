"""A call's entries read in one batch are handled in the order they were published, whatever their
topic: a read returns them topic by topic, and a hang-up handled before the fork.stopped that
came first would lose the pause."""

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from telnyx_simulator.payloads import event as webhook_event
from tests.media_ingest.harness import (
    ingest_settings,
    recording_completed,
    run_command,
    running,
)
from voicetap_sdk import codec
from voicetap_sdk.streams import Entry, entry_fields
from voicetap_sdk.topics import telnyx_topic

pytestmark = pytest.mark.slow  # waits out the fork.stopped grace


def webhook_entry(event_type: str, call_control_id: str, entry_id: str) -> Entry:
    data = webhook_event(event_type, {"call_control_id": call_control_id}, datetime.now(UTC))
    body = codec.dumps({"data": data, "meta": {"attempt": 1, "delivered_to": "http://test"}})
    fields = entry_fields(data["id"], event_type, body, call_control_id=call_control_id)
    return Entry(
        telnyx_topic(event_type),
        entry_id,
        {k: v.encode() if isinstance(v, str) else v for k, v in fields.items()},
    )


async def test_a_fork_stopped_read_with_the_hang_up_after_it_still_pauses_the_call(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    ccid = fake.state.create_call().call_control_id
    async with running(ingest_settings(tmp_path, redis_url, fake.url)) as (service, _):
        assert (await run_command(redis, "fork_start", ccid))["ok"]
        await asyncio.sleep(2.5)  # past the grace in which a fork.stopped is an older fork's
        now_ms = int(time.time() * 1000)
        await service.dispatcher.handle(
            [  # as one read returns them: the hang-up's topic first
                webhook_entry("call.hangup", ccid, f"{now_ms + 1000}-0"),
                webhook_entry("call.fork.stopped", ccid, f"{now_ms}-0"),
            ]
        )
        event = await recording_completed(redis, ccid)
    assert event["reason"] == "hangup" and len(event["paused"]) == 1, event["paused"]
