"""The values an ingest instance is built from: plain, typed and frozen, taken from
:class:`~media_ingest.settings.IngestSettings` once, at the edge (``main.ingest_config``)."""

from dataclasses import dataclass
from pathlib import Path

from media_ingest.commands import MediaTargets
from media_ingest.endings import Timeouts
from media_ingest.lifecycle import IngestMode
from media_ingest.protocol.codecs import CodecSpec


@dataclass(frozen=True)
class Recording:
    sample_rate: int  # INGEST_RECORDING_RATE
    jitter_ms: int  # INGEST_JITTER_MS
    interval: float  # INGEST_ANALYTICS_INTERVAL_SECONDS
    publish_audio: bool  # INGEST_PUBLISH_AUDIO
    dynamic_payload_types: dict[int, CodecSpec] | None  # INGEST_DYNAMIC_PAYLOAD_TYPES, parsed
    spool_bound: int  # INGEST_SPOOL_MAX_RECORDINGS
    upload_concurrency: int  # INGEST_UPLOAD_CONCURRENCY


@dataclass(frozen=True)
class Topics:
    maxlen: int  # TOPIC_MAXLEN
    partitions: int  # TOPIC_PARTITIONS
    analytics_maxlen: int  # INGEST_ANALYTICS_MAXLEN
    audio_maxlen: int  # INGEST_AUDIO_MAXLEN
    event_queue: int  # INGEST_EVENT_QUEUE


@dataclass(frozen=True)
class Ports:
    bind_host: str  # INGEST_RTP_HOST
    ports: range  # INGEST_RTP_PORTS
    lease_seconds: int  # INGEST_PORT_LEASE_SECONDS
    takeover_seconds: float  # INGEST_TAKEOVER_SECONDS


@dataclass(frozen=True)
class IngestConfig:
    instance: str  # INGEST_INSTANCE_ID, or <hostname>-<pid>
    data_dir: Path  # VOICETAP_DATA_DIR
    mode: IngestMode  # INGEST_MODE
    redis_timeout: float  # REDIS_TIMEOUT_SECONDS (readiness probe)
    recording: Recording
    topics: Topics
    ports: Ports
    targets: MediaTargets
    timeouts: Timeouts
