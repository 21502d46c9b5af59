"""Topic names: the public contract, each declared here and nowhere else.

A topic is one Redis Stream. Telnyx webhooks go to ``telnyx.<event_type>``; voicetap's own
events use the ``voicetap.`` prefix; dead letters go to ``<topic>.dlq``. The names are ``Final``,
so a model can use one as the default of its ``Literal`` event type.
"""

from typing import Final

TELNYX_PREFIX: Final = "telnyx."
VOICETAP_PREFIX: Final = "voicetap."
DLQ_SUFFIX: Final = ".dlq"

# Signed webhooks whose body is not a usable event (not JSON, no data.id/event_type).
WEBHOOK_DEAD_LETTERS: Final = "voicetap.webhooks.dlq"

# Telnyx webhooks voicetap's services read (any other event type still gets its own topic).
CALL_INITIATED: Final = "telnyx.call.initiated"
CALL_ANSWERED: Final = "telnyx.call.answered"
CALL_HANGUP: Final = "telnyx.call.hangup"
CALL_TRANSCRIPTION: Final = "telnyx.call.transcription"
CALL_FORK_STARTED: Final = "telnyx.call.fork.started"
CALL_FORK_STOPPED: Final = "telnyx.call.fork.stopped"
STREAMING_STARTED: Final = "telnyx.streaming.started"
STREAMING_STOPPED: Final = "telnyx.streaming.stopped"
STREAMING_FAILED: Final = "telnyx.streaming.failed"

# Call Control commands (``voicetap_sdk.commands``) and their outcomes.
MEDIA_COMMANDS: Final = "voicetap.command.media"
TRANSCRIPTION_COMMANDS: Final = "voicetap.command.transcription"
COMMAND_RESULTS: Final = "voicetap.command.result"

# Media events (``voicetap_sdk.media_events``), written by media_ingest but playback.
MEDIA_ANALYTICS: Final = "voicetap.media.analytics"
MEDIA_AUDIO: Final = "voicetap.media.audio"
RECORDING_COMPLETED: Final = "voicetap.recording.completed"
MEDIA_ERROR: Final = "voicetap.media.error"
MEDIA_TAKEOVER: Final = "voicetap.media.takeover"
MEDIA_DTMF: Final = "voicetap.media.dtmf"
MEDIA_MARK: Final = "voicetap.media.mark"
MEDIA_PLAYBACK: Final = "voicetap.media.playback"

# Transcript events (``voicetap_sdk.transcript_events``), written by transcript_indexer.
TRANSCRIPT_COMPLETED: Final = "voicetap.transcript.completed"

# Retention and erasure (``voicetap_common.erasure``): requests, each service's part of one, and
# the calls gone (ids only, never content).
ERASURE_REQUESTED: Final = "voicetap.erasure.requested"
ERASURE_PROGRESS: Final = "voicetap.erasure.progress"
CALL_ERASED: Final = "voicetap.call.erased"
CALL_EXPIRED: Final = "voicetap.call.expired"


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
