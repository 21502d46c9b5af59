"""Topic names: the public contract, named in one place.

A topic is one Redis Stream. Telnyx webhooks go to ``telnyx.<event_type>``; voicetap's own
events use the ``voicetap.`` prefix; dead letters go to ``<topic>.dlq``.
"""

TELNYX_PREFIX = "telnyx."
VOICETAP_PREFIX = "voicetap."
DLQ_SUFFIX = ".dlq"

# Signed webhooks whose body is not a usable event (not JSON, no data.id/event_type).
WEBHOOK_DEAD_LETTERS = "voicetap.webhooks.dlq"

CALL_INITIATED = "telnyx.call.initiated"
CALL_ANSWERED = "telnyx.call.answered"
CALL_HANGUP = "telnyx.call.hangup"
CALL_TRANSCRIPTION = "telnyx.call.transcription"
CALL_FORK_STARTED = "telnyx.call.fork.started"
CALL_FORK_STOPPED = "telnyx.call.fork.stopped"
STREAMING_STARTED = "telnyx.streaming.started"
STREAMING_STOPPED = "telnyx.streaming.stopped"
STREAMING_FAILED = "telnyx.streaming.failed"


def is_internal(stream: str) -> bool:
    """A stream voicetap keeps for itself (a call's live transcript, an ingest instance's inbox),
    not a topic of the contract: such keys start with their hash tag, ``{voicetap.<part>}:``, and
    topics never do."""
    return stream.startswith("{")


def telnyx_topic(event_type: str) -> str:
    """The topic of a Telnyx webhook event type, known or not (``call.hangup`` -> ``telnyx.call.hangup``)."""
    return TELNYX_PREFIX + event_type


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def dedupe_key(topic: str, event_id: str) -> str:
    """The key marking ``event_id`` as published on ``topic``.

    Its hash tag is the topic name, so on Redis Cluster it lives in the stream's own slot and one
    script can check it and append to the stream atomically.
    """
    return "{" + topic + "}:seen:" + event_id
