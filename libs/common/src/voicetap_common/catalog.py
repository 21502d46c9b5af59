"""Every topic voicetap writes, with its message model, writer and reading groups.

The AsyncAPI document (docs/asyncapi.json) is generated from this catalogue, so a subscriber
never has to read the source; a service that adds a topic adds it here.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from voicetap_common import commands, events, topics


@dataclass(frozen=True)
class TopicSpec:
    name: str
    summary: str
    message: type[BaseModel]
    written_by: str
    read_by: tuple[str, ...] = ()


def _telnyx(event_type: str, model: type[events._EventBase], summary: str, read_by: tuple[str, ...] = ()) -> TopicSpec:
    return TopicSpec(
        name=topics.telnyx_topic(event_type),
        summary=summary,
        message=events.TelnyxWebhook[model],  # type: ignore[index]
        written_by="webhook_gateway",
        read_by=read_by,
    )


TELNYX_TOPICS: tuple[TopicSpec, ...] = (
    _telnyx("call.initiated", events.CallInitiatedEvent, "A call started (incoming or outgoing).", ("transcript_indexer",)),
    _telnyx("call.answered", events.CallAnsweredEvent, "A call was answered.", ("transcript_indexer", "media_ingest")),
    _telnyx("call.hangup", events.CallHangupEvent, "A call ended; `occurred_at` is its end time.", ("transcript_indexer", "media_ingest")),
    _telnyx("call.transcription", events.CallTranscriptionEvent, "An interim or final transcription result.", ("transcript_indexer",)),
    _telnyx("call.fork.started", events.CallForkStartedEvent, "Telnyx started forking the call's media.", ("media_ingest",)),
    _telnyx("call.fork.stopped", events.CallForkStoppedEvent, "Telnyx stopped forking the call's media.", ("media_ingest",)),
    _telnyx("streaming.started", events.StreamingStartedEvent, "A WebSocket media stream started.", ("media_ingest",)),
    _telnyx("streaming.stopped", events.StreamingStoppedEvent, "A WebSocket media stream stopped.", ("media_ingest",)),
    _telnyx("streaming.failed", events.StreamingFailedEvent, "A WebSocket media stream failed.", ("media_ingest",)),
)


COMMAND_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=commands.MEDIA_COMMANDS,
        summary="Fork and streaming commands (fork_start/stop, streaming_start/stop) from any consumer; executed once.",
        message=commands.CommandMessage,
        written_by="any consumer, `voicetap call`",
        read_by=("media_ingest",),
    ),
    TopicSpec(
        name=commands.TRANSCRIPTION_COMMANDS,
        summary="Transcription commands (transcription_start/stop) from any consumer; executed once.",
        message=commands.CommandMessage,
        written_by="any consumer, `voicetap call`",
        read_by=("transcript_indexer",),
    ),
    TopicSpec(
        name=commands.COMMAND_RESULTS,
        summary="The outcome of every command: ok, or the failure with Telnyx's own error detail.",
        message=commands.CommandResult,
        written_by="media_ingest, transcript_indexer",
    ),
)


def all_topics() -> tuple[TopicSpec, ...]:
    return TELNYX_TOPICS + COMMAND_TOPICS
