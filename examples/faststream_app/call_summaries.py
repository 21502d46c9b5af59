"""A FastStream service on voicetap topics: each call's final transcripts, summed up at hang-up.

It subscribes to ``telnyx.call.transcription`` and ``telnyx.call.hangup`` as the consumer group
``call_summaries`` with FastStream's ``RedisBroker``, each handler taking the SDK's typed event
(``voicetap_sdk.faststream.decode_event``). The final results of a call are kept in a hash keyed by
their event ids (so a redelivered one changes nothing); its hang-up publishes one summary on
``acme.call.summaries`` (plain fields; ``publish_fields_once`` keyed by the call, so a redelivered
hang-up publishes nothing new). A transcription that arrives after its call's hang-up is not in the
summary.

What FastStream does not do for voicetap topics, ``Guarantees`` adds beside it: the group created
at ``0``, idle entries claimed (a second subscriber per stream, ``min_idle_time``), entries past
``max_deliveries`` moved to ``<topic>.dlq`` (docs/CONSUMERS.md).

    faststream run call_summaries:create_app --factory
    faststream docs gen call_summaries:create_app --factory   # its AsyncAPI document
"""

import os

from faststream import FastStream
from faststream.redis import RedisBroker
from faststream.specification import AsyncAPI

from voicetap_sdk import codec, stack_redis_url, topics
from voicetap_sdk.connection import Connection
from voicetap_sdk.events import CallHangupEvent, CallTranscriptionEvent
from voicetap_sdk.faststream import Guarantees

GROUP = "call_summaries"
SUMMARIES = "acme.call.summaries"
SUMMARY_TYPE = "acme.call.summary"


def transcript_key(call_control_id: str) -> str:
    """A call's final results so far, by event id (in the summaries topic's hash slot)."""
    return "{" + SUMMARIES + "}:finals:" + call_control_id


def create_app(
    redis_url: str | None = None,
    *,
    consumer: str = "call-summaries-1",
    claim_idle_ms: int = 30_000,
    max_deliveries: int = 5,
    partitions: int | None = None,
) -> FastStream:
    url = redis_url or stack_redis_url(os.environ)
    broker = RedisBroker(url)
    guarantees = Guarantees(
        url,
        group=GROUP,
        consumer=consumer,
        topics=[topics.CALL_TRANSCRIPTION, topics.CALL_HANGUP],
        claim_idle_ms=claim_idle_ms,
        max_deliveries=max_deliveries,
        interval_s=min(5.0, claim_idle_ms / 1000),
        partitions=partitions,
    )
    connection = Connection(url, partitions=partitions)

    async def on_transcription(event: CallTranscriptionEvent) -> None:
        result, call = event.payload.transcription_data, event.payload.call_control_id
        if result.is_final and call:
            redis = await connection.client()
            occurred_at = event.occurred_at.isoformat() if event.occurred_at else ""
            await redis.hset(transcript_key(call), event.id, f"{occurred_at}|{result.transcript}")
            await redis.expire(transcript_key(call), 86_400)

    async def on_hangup(event: CallHangupEvent) -> None:
        call = event.payload.call_control_id
        if not call:
            return
        redis = await connection.client()
        finals = sorted(v.decode() for v in (await redis.hgetall(transcript_key(call))).values())
        text = " ".join(final.split("|", 1)[1] for final in finals)
        summary = {
            "call_control_id": call,
            "hangup_cause": event.payload.hangup_cause,
            "finals": len(finals),
            "words": len(text.split()),
            "transcript": text,
        }
        producer = await connection.producer()
        fields = {"id": f"summary:{call}", "type": SUMMARY_TYPE, "call_control_id": call}
        await producer.publish_fields_once(
            SUMMARIES, f"summary:{call}", {**fields, "event": codec.dumps(summary)}
        )

    guarantees.subscribe(broker, topics.CALL_TRANSCRIPTION, on_transcription)
    guarantees.subscribe(broker, topics.CALL_HANGUP, on_hangup)
    return FastStream(
        broker,
        on_startup=[guarantees.start],
        on_shutdown=[guarantees.stop, connection.close],
        specification=AsyncAPI(
            broker,
            title="call_summaries",
            description="Sums up each call's final transcripts at its hang-up (voicetap topics).",
        ),
    )
