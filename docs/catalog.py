"""Every topic voicetap writes, with its message model, writer and reading groups.

The AsyncAPI document (docs/asyncapi.json) and the README's topics table are generated from this
catalogue, so a subscriber never has to read the source; a service that adds a topic declares its
name in ``voicetap_sdk.topics`` and describes it here. Documentation tooling, not runtime: no
service imports it.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from voicetap_sdk import (
    commands,
    decoding,
    erasure_events,
    events,
    media_events,
    partitions,
    topics,
    transcript_events,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    summary: str
    message: type[BaseModel]
    written_by: str
    read_by: tuple[str, ...] = ()

    @property
    def sdk_model(self) -> str:
        """What a ``voicetap_sdk.Subscriber`` handler of this topic receives (``decoding``)."""
        return decoding.model_name(self.name)

    @property
    def partitioned(self) -> bool:
        """Split into ``<name>:p<k>`` streams when ``TOPIC_PARTITIONS`` is above 1 (``voicetap_sdk.partitions``)."""
        return partitions.is_partitioned(self.name)


def _telnyx(
    event_type: str, model: type[events._EventBase], summary: str, read_by: tuple[str, ...] = ()
) -> TopicSpec:
    return TopicSpec(
        name=topics.telnyx_topic(event_type),
        summary=summary,
        # A generic model parametrised at run time (pydantic builds the class); mypy only takes
        # a class written out as a type argument.
        message=events.TelnyxWebhook[model],  # type: ignore[valid-type]
        written_by="webhook_gateway",
        read_by=read_by,
    )


TELNYX_TOPICS: tuple[TopicSpec, ...] = (
    _telnyx(
        "call.initiated",
        events.CallInitiatedEvent,
        "A call started (incoming or outgoing).",
        ("transcript_indexer",),
    ),
    _telnyx(
        "call.answered",
        events.CallAnsweredEvent,
        "A call was answered.",
        ("transcript_indexer", "media_ingest"),
    ),
    _telnyx(
        "call.hangup",
        events.CallHangupEvent,
        "A call ended; `occurred_at` is its end time.",
        ("transcript_indexer", "media_ingest"),
    ),
    _telnyx(
        "call.transcription",
        events.CallTranscriptionEvent,
        "An interim or final transcription result.",
        ("transcript_indexer",),
    ),
    _telnyx(
        "call.fork.started",
        events.CallForkStartedEvent,
        "Telnyx started forking the call's media.",
        ("media_ingest",),
    ),
    _telnyx(
        "call.fork.stopped",
        events.CallForkStoppedEvent,
        "Telnyx stopped forking the call's media.",
        ("media_ingest",),
    ),
    _telnyx(
        "streaming.started",
        events.StreamingStartedEvent,
        "A WebSocket media stream started.",
        ("media_ingest",),
    ),
    _telnyx(
        "streaming.stopped",
        events.StreamingStoppedEvent,
        "A WebSocket media stream stopped.",
        ("media_ingest",),
    ),
    _telnyx(
        "streaming.failed",
        events.StreamingFailedEvent,
        "A WebSocket media stream failed.",
        ("media_ingest",),
    ),
)


COMMAND_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=topics.MEDIA_COMMANDS,
        summary="Fork and streaming commands (fork_start/stop, streaming_start/stop) from any consumer; executed once.",
        message=commands.CommandMessage,
        written_by="any consumer, `voicetap call`",
        read_by=("media_ingest",),
    ),
    TopicSpec(
        name=topics.TRANSCRIPTION_COMMANDS,
        summary="Transcription commands (transcription_start/stop) from any consumer; executed once.",
        message=commands.CommandMessage,
        written_by="any consumer, `voicetap call`",
        read_by=("transcript_indexer",),
    ),
    TopicSpec(
        name=topics.COMMAND_RESULTS,
        summary="The outcome of every command: ok, or the failure with Telnyx's own error detail.",
        message=commands.CommandResult,
        written_by="media_ingest, transcript_indexer",
    ),
)


MEDIA_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=topics.MEDIA_ANALYTICS,
        summary="About once a second per active call: per-leg level, voice activity, talk and silence, over-talk. Bounded by `INGEST_ANALYTICS_MAXLEN`.",
        message=media_events.MediaAnalytics,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_AUDIO,
        summary="When `INGEST_PUBLISH_AUDIO`: one leg's PCM chunk (s16le, rate and channels in the event). Bounded by `INGEST_AUDIO_MAXLEN`.",
        message=media_events.MediaAudio,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.RECORDING_COMPLETED,
        summary="Once per call, after the stereo WAV (left = inbound caller, right = outbound) is stored and verified: `storage_url`, `bytes`, `sha256`, duration, codec, paused intervals, per-leg statistics.",
        message=media_events.RecordingCompleted,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_ERROR,
        summary="A media failure: ports exhausted, unsupported codec, refused or failed stream, Call Control error.",
        message=media_events.MediaError,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_TAKEOVER,
        summary="A live call's holder went silent past `INGEST_TAKEOVER_SECONDS`: another instance took the call, moved its media (fork or stream) to itself and records the rest as the next part of the same recording.",
        message=media_events.MediaTakeover,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_DTMF,
        summary="A DTMF digit received on a call's media stream.",
        message=media_events.MediaDtmf,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_MARK,
        summary="A playback mark echoed by Telnyx: the audio sent before it has played (or was cleared).",
        message=media_events.MediaMark,
        written_by="media_ingest",
    ),
    TopicSpec(
        name=topics.MEDIA_PLAYBACK,
        summary="Audio, `clear` or `mark` to send into a streamed call; every media_ingest instance tails it (XREAD, no group) and the one holding the call's WebSocket sends it.",
        message=media_events.PlaybackRequest,
        written_by="any consumer",
    ),
)


TRANSCRIPT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=topics.TRANSCRIPT_COMPLETED,
        summary="Once per call, when its hang-up was seen and no new segment came for `INDEXER_SETTLE_SECONDS`: "
        "the assembled transcript (final segments in order, with tracks and confidence) and the call's metadata, "
        "with `revision` 1. A final segment stored later brings revision 2, 3, ... (the whole transcript again, "
        "after the same quiet time); the event id ends in `:<revision>`.",
        message=transcript_events.TranscriptCompleted,
        written_by="transcript_indexer",
    ),
)


ERASURE_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=topics.ERASURE_REQUESTED,
        summary="Erase one call (`call_control_id`) or every call from or to a `number`; reason `requested` "
        "(`voicetap erase`, `DELETE /calls/{id}`) or `expired` (`VOICETAP_RETENTION_DAYS`). Ids only.",
        message=erasure_events.ErasureRequest,
        written_by="`voicetap erase`, transcript_indexer (`DELETE /calls/{id}`, retention)",
        read_by=("transcript_indexer.erasure",),
    ),
    TopicSpec(
        name=topics.ERASURE_PROGRESS,
        summary="One service's part of an erasure, done: the call ids it covered and what it removed, counted per "
        "kind. The indexer's part names the calls; each media_ingest instance follows it with its own "
        "(group `media_ingest.erasure:<instance>`).",
        message=erasure_events.ErasureProgress,
        written_by="transcript_indexer, media_ingest",
        read_by=("media_ingest",),
    ),
    TopicSpec(
        name=topics.CALL_ERASED,
        summary="Once per erased call, ids only: erase what you derived from it.",
        message=erasure_events.CallGone,
        written_by="transcript_indexer",
    ),
    TopicSpec(
        name=topics.CALL_EXPIRED,
        summary="Once per call past `VOICETAP_RETENTION_DAYS`, removed everywhere; ids only.",
        message=erasure_events.CallGone,
        written_by="transcript_indexer",
    ),
)


def all_topics() -> tuple[TopicSpec, ...]:
    return TELNYX_TOPICS + COMMAND_TOPICS + MEDIA_TOPICS + TRANSCRIPT_TOPICS + ERASURE_TOPICS
