"""voicetap's media events: what media_ingest publishes about calls' audio, and what it takes back.

| topic | holds |
| --- | --- |
| ``voicetap.media.analytics`` | about once a second per active call: per-leg level, voice activity, talk and silence, over-talk |
| ``voicetap.media.audio`` | (when enabled) one leg's PCM chunk; ``encoding``/``sample_rate``/``channels`` say what it is |
| ``voicetap.recording.completed`` | once per call, once the stereo WAV (left = inbound caller, right = outbound) is stored and verified: where, its size, SHA-256 and statistics |
| ``voicetap.media.error`` | a media failure a user must see: ports exhausted, unsupported codec, refused stream, API error |
| ``voicetap.media.takeover`` | a live call's media moved to another instance because its holder went silent |
| ``voicetap.media.dtmf`` / ``voicetap.media.mark`` | DTMF digits and playback marks echoed by Telnyx on a media stream |
| ``voicetap.media.playback`` | written by any consumer: audio (or ``clear``/``mark``) to send into a streamed call |

Entries use the common format (``id``, ``type``, ``event`` JSON) plus ``call_control_id`` (and
``leg`` on audio) as routing fields. Audio travels base64 in the JSON, so every field stays UTF-8.
The topic names are declared in ``voicetap_sdk.topics``.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Leg = Literal["inbound", "outbound"]


def _now() -> datetime:
    return datetime.now(UTC)


class LegLevels(BaseModel):
    """One leg over one analytics window."""

    rms_dbfs: float = Field(description="Mean level (RMS) in dBFS; -120 is digital silence.")
    peak_dbfs: float = Field(description="Peak level in dBFS.")
    talk: float = Field(description="Seconds of the window with voice activity.")
    silence: float = Field(description="Seconds of the window without voice activity.")
    voice_active: bool = Field(description="Whether the leg had voice activity in the window.")
    talk_total: float = Field(
        description="Seconds of voice activity since the call's media started."
    )


class MediaAnalytics(BaseModel):
    """Live analytics of one call over one window (times in seconds on the recording's timeline)."""

    id: str = Field(description="`analytics:<call_control_id>:<window start>`.")
    call_control_id: str
    start: float = Field(description="Window start, seconds since the call's media started.")
    end: float
    overtalk: float = Field(description="Seconds of the window where both legs had voice activity.")
    overtalk_total: float = Field(description="Over-talk seconds since the call's media started.")
    inbound: LegLevels = Field(description="The caller (received by Telnyx).")
    outbound: LegLevels = Field(description="Towards the caller (sent by Telnyx).")
    at: datetime = Field(default_factory=_now)


class MediaAudio(BaseModel):
    """A chunk of one leg's decoded audio, contiguous with the previous chunk of the same leg."""

    id: str = Field(description="`audio:<call_control_id>:<leg>:<first sample>`.")
    call_control_id: str
    leg: Leg
    encoding: Literal["s16le"] = Field(
        default="s16le", description="Signed 16-bit little-endian PCM."
    )
    sample_rate: int
    channels: Literal[1] = 1
    start: float = Field(description="Seconds since the call's media started of the first sample.")
    samples: int
    payload: str = Field(description="Base64 of the PCM bytes.")


class LegStatistics(BaseModel):
    """Per-leg RTP statistics (RFC 3550); WebSocket media counts frames as packets."""

    model_config = ConfigDict(extra="allow")

    received: int = Field(description="Packets received.")
    lost: int
    duplicated: int
    reordered: int
    late: int = 0
    malformed: int = 0
    foreign: int = Field(
        default=0, description="Packets from a source other than the latched one, dropped."
    )
    ssrc_changes: int = 0
    decode_errors: int = 0
    unsupported: int = 0
    jitter: float = Field(description="RFC 3550 interarrival jitter, timestamp units.")
    jitter_ms: float
    codec: str = Field(description="Encoding on the wire, e.g. PCMU.")
    sample_rate: int = Field(description="Decoded sample rate of the wire codec.")


class RecordingGap(BaseModel):
    """An interval of the call no instance recorded (seconds from the recording start)."""

    start: float
    end: float
    reason: Literal["worker_restart", "takeover"] = Field(
        description="`worker_restart`: the holding instance was killed and came back; "
        "`takeover`: it did not, and another instance took the call."
    )


class RecordingPart(BaseModel):
    """One instance's share of a call whose media moved (seconds from the recording start)."""

    part: int = Field(description="1 for the instance that set the call up, then one per takeover.")
    instance: str
    start: float
    end: float | None = Field(
        description="Where its audio ends; None when the part was not reachable when the call ended."
    )
    joined: bool = Field(
        description="True when its audio is in this event's file; False when it was not reachable "
        "(its instance's disk, not shared, with no object store between them)."
    )


class RecordingCompleted(BaseModel):
    """A call's recording is complete: a stereo 16-bit PCM WAV, left = inbound (caller), right = outbound."""

    id: str = Field(description="`recording:<call_control_id>`: one event per call.")
    call_control_id: str
    path: str = Field(
        description="The stored file's path for a `file://` store; for a bucket, the same as `storage_url`."
    )
    url_path: str = Field(
        description="Where every ingest instance and the indexer serve it (HTTP Range, ETag): "
        "`/calls/<call_control_id>/recording.wav`."
    )
    storage_url: str = Field(
        default="",
        description="The object in `VOICETAP_RECORDINGS_URL`: `s3://bucket/prefix/<name>.wav` or `file:///…/<name>.wav`. "
        "Set on every published event: it is published only after the upload was verified.",
    )
    bytes: int = Field(
        default=0, description="Size of the stored object (verified after the upload)."
    )
    sha256: str = Field(
        default="", description="SHA-256 (hex) of the stored object, read back after the upload."
    )
    instance: str
    duration: float = Field(description="Seconds of audio in the file.")
    codec: str | None = Field(
        description="Wire codec of the inbound leg (else outbound); None when no media came."
    )
    sample_rate: int
    channels: dict[str, str] = Field(
        default_factory=lambda: {"left": "inbound", "right": "outbound"}
    )
    paused: list[list[float]] = Field(
        default_factory=list,
        description="Silenced intervals [start, end] in seconds (fork stopped, PCI pause).",
    )
    legs: dict[str, LegStatistics] | None = Field(
        default=None,
        description="Per-leg statistics; for a recovered file, as last saved during the call (None if never saved).",
    )
    analytics: dict[str, Any] | None = Field(
        default=None, description="Talk, silence and over-talk totals."
    )
    media: list[str] = Field(default_factory=list, description="How media came: `fork`, `stream`.")
    reason: str = Field(
        description="Why the recording ended: hangup, media_timeout, recovered, shutdown."
    )
    recovered: bool = Field(
        default=False, description="True when repaired after the recording instance died."
    )
    gaps: list[RecordingGap] = Field(
        default_factory=list,
        description="Intervals lost while the holding instance was down (restart or takeover); "
        "silence in the file, which stays aligned to the call's wall clock.",
    )
    parts: list[RecordingPart] = Field(
        default_factory=list,
        description="When the call's media moved between instances (takeover): each one's share, in order. "
        "Empty for a call one instance recorded.",
    )
    completed_at: datetime = Field(default_factory=_now)


class MediaTakeover(BaseModel):
    """A live call's holder went silent past `INGEST_TAKEOVER_SECONDS`: another instance took the
    call, moved its media to itself and records the rest as the next part of the same recording."""

    id: str = Field(description="`takeover:<call_control_id>:<part>`: once per takeover.")
    call_control_id: str
    dead_instance: str
    instance: str = Field(description="The instance holding the call from now on.")
    part: int = Field(description="The part this instance records (2 for the first takeover).")
    gap_start: float = Field(
        description="Seconds from the recording start at which the dead instance's audio stops "
        "at the latest (its last heartbeat)."
    )
    media: Literal["fork", "stream", "paused"] = Field(
        description="What the new holder asked for: the fork or stream moved to itself, or nothing while the call is paused."
    )
    at: datetime = Field(default_factory=_now)


MediaErrorKind = Literal[
    "ports_exhausted",
    "unsupported_codec",
    "stream_auth_failed",
    "stream_error",
    "stream_failed",
    "call_control",
    "internal",
]


class MediaError(BaseModel):
    id: str
    call_control_id: str | None
    kind: MediaErrorKind
    detail: str
    telnyx_error: str | None = Field(
        default=None,
        description="For `call_control`: the failure kind of the command (see CommandResult.error).",
    )
    leg: Leg | None = Field(
        default=None,
        description="For `unsupported_codec` on forked RTP: the leg the packets came on.",
    )
    payload_type: int | None = Field(
        default=None,
        description="For `unsupported_codec` on forked RTP: the payload type no decoder takes. Published once per call, leg and "
        "payload type; every such packet is counted in the leg's `unsupported`.",
    )
    instance: str
    at: datetime = Field(default_factory=_now)


class MediaDtmf(BaseModel):
    id: str
    call_control_id: str
    stream_id: str | None
    digit: str
    occurred_at: str | None = None


class MediaMark(BaseModel):
    """A playback mark Telnyx echoed: the audio sent before it has been played (or was cleared)."""

    id: str
    call_control_id: str
    stream_id: str | None
    name: str


class PlaybackRequest(BaseModel):
    """Written by any consumer on ``voicetap.media.playback`` (entry field ``call_control_id`` too).

    Sent in order over the call's media stream by the instance holding it: ``clear`` first (drops
    audio Telnyx has queued), then ``payload`` as a ``media`` frame, then ``mark``. The payload is
    base64 audio in the stream's bidirectional codec (raw codec audio in ``rtp`` mode, 20 ms to
    30 s per message; an MP3 file in ``mp3`` mode).
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt key is refused, not silently ignored

    id: str | None = None
    call_control_id: str | None = Field(
        default=None, description="When given, must match the entry's `call_control_id` field."
    )
    payload: str | None = None
    mark: str | None = None
    clear: bool = False
