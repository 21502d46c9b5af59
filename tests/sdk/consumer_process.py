"""A subscriber in a process of its own, to be killed: each transcription it handles leaves one
entry on ``acme.handled`` (publish_once, keyed by the event id). Arguments: Redis URL, consumer."""

import asyncio
import sys

from voicetap_sdk import Subscriber, topics
from voicetap_sdk.events import CallTranscriptionEvent

url, consumer = sys.argv[1:3]
sub = Subscriber(
    url,
    group="g",
    consumer=consumer,
    partitions=1,
    batch_size=10,
    block_ms=100,
    claim_idle_ms=300,
    claim_interval_s=0.2,
)


@sub.on(topics.CALL_TRANSCRIPTION)
async def on_text(event: CallTranscriptionEvent) -> None:
    await sub.publish_once("acme.handled", key=event.id, fields={"by": consumer})
    await asyncio.sleep(0.01)


sub.run()
