"""From an entry's plain fields to the typed event of its topic.

Every topic of the catalogue has a model here (:func:`event_model`): a Telnyx webhook topic
(``telnyx.*``) decodes to the event under the body's ``data`` (``CallTranscriptionEvent`` for
``telnyx.call.transcription``; an event type voicetap has no model for yet to
:class:`~voicetap_sdk.events.GenericEvent`, every field kept), a command topic to the command
(``ForkStart``, ...), and voicetap's own topics to their models. A topic outside the catalogue
(one of your own, a dead-letter topic) has no model: its handlers take the raw
:class:`~voicetap_sdk.streams.Entry`.
"""

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from voicetap_sdk import codec, commands, erasure_events, media_events, topics, transcript_events
from voicetap_sdk.events import KNOWN_EVENTS, GenericEvent, TelnyxEvent, envelope_adapter
from voicetap_sdk.streams import Entry

VOICETAP_MODELS: dict[str, Any] = {
    topics.MEDIA_COMMANDS: commands.Command,
    topics.TRANSCRIPTION_COMMANDS: commands.Command,
    topics.COMMAND_RESULTS: commands.CommandResult,
    topics.MEDIA_ANALYTICS: media_events.MediaAnalytics,
    topics.MEDIA_AUDIO: media_events.MediaAudio,
    topics.RECORDING_COMPLETED: media_events.RecordingCompleted,
    topics.MEDIA_ERROR: media_events.MediaError,
    topics.MEDIA_TAKEOVER: media_events.MediaTakeover,
    topics.MEDIA_DTMF: media_events.MediaDtmf,
    topics.MEDIA_MARK: media_events.MediaMark,
    topics.MEDIA_PLAYBACK: media_events.PlaybackRequest,
    topics.TRANSCRIPT_COMPLETED: transcript_events.TranscriptCompleted,
    topics.ERASURE_REQUESTED: erasure_events.ErasureRequest,
    topics.ERASURE_PROGRESS: erasure_events.ErasureProgress,
    topics.CALL_ERASED: erasure_events.CallGone,
    topics.CALL_EXPIRED: erasure_events.CallGone,
}
"""The model of each voicetap topic's ``event`` JSON (``commands.Command`` is the union of the
commands, discriminated on ``action``)."""

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    topic: TypeAdapter(model) for topic, model in VOICETAP_MODELS.items()
}


class UndecodableEntry(ValueError):
    """The entry's ``event`` is not JSON, or not the topic's model."""


def is_telnyx(topic: str) -> bool:
    return topic.startswith(topics.TELNYX_PREFIX) and not topic.endswith(topics.DLQ_SUFFIX)


def has_model(topic: str) -> bool:
    """Whether entries of ``topic`` decode to a typed event (else handlers take the raw entry)."""
    return is_telnyx(topic) or topic in VOICETAP_MODELS


def event_model(topic: str) -> Any:
    """The type a handler of ``topic`` receives: a model class (``GenericEvent`` for a ``telnyx.*``
    topic of an event type voicetap has no model for), or ``commands.Command`` (a union)."""
    if is_telnyx(topic):
        event_type = topic.removeprefix(topics.TELNYX_PREFIX)
        return KNOWN_EVENTS.get(event_type, GenericEvent)
    if topic in VOICETAP_MODELS:
        return VOICETAP_MODELS[topic]
    raise KeyError(f"{topic}: not a topic of voicetap's catalogue; its entries have no model")


def decode(entry: Entry) -> Any:
    """The typed event of ``entry`` (by its topic); raises :class:`UndecodableEntry`."""
    try:
        if is_telnyx(entry.topic):
            event: TelnyxEvent = envelope_adapter.validate_json(entry.body).data
            return event
        adapter = _ADAPTERS.get(entry.topic)
        if adapter is None:
            raise UndecodableEntry(f"{entry.topic}: no model for this topic")
        return adapter.validate_json(entry.body)
    except (ValidationError, codec.JSONDecodeError) as exc:
        raise UndecodableEntry(f"{entry.topic} entry {entry.entry_id}: {_first_line(exc)}") from exc


def decode_json(topic: str, body: bytes | str) -> Any:
    """:func:`decode` for an ``event`` field alone (what a FastStream decoder has)."""
    return decode(Entry(topic, "", {"event": body.encode() if isinstance(body, str) else body}))


def model_name(topic: str) -> str:
    """``voicetap_sdk.<module>.<Model>``: how the documentation names the model of ``topic``."""
    model = event_model(topic)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return f"{model.__module__}.{model.__qualname__}"
    return f"{commands.__name__}.Command"


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return " ".join(lines[:3]) if lines else type(exc).__name__
