"""The indexer's settings: ``INDEXER_*`` environment variables on top of the common ones."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from transcript_indexer.storage import sqlite_path
from voicetap_common.call_control import TelnyxApiSettings
from voicetap_common.recordings_settings import RecordingsStoreSettings
from voicetap_common.settings import CommonSettings
from voicetap_sdk.commands import TranscriptionEngine, TranscriptionTracks


class IndexerSettings(CommonSettings, TelnyxApiSettings, RecordingsStoreSettings):
    indexer_host: str = Field(default="127.0.0.1", description="Address the query API listens on.")
    indexer_port: int = Field(
        default=8002, ge=0, le=65535, description="Port of the query API (0: any free port)."
    )
    indexer_database_url: str = Field(
        default="",
        description="`postgresql://...` for PostgreSQL, `sqlite:///path` for a SQLite file; "
        "empty: `transcripts.sqlite3` under `VOICETAP_DATA_DIR`.",
    )
    indexer_api_token: SecretStr | None = Field(
        default=None,
        description="Alias of `VOICETAP_API_TOKEN` for the indexer (read when that is unset): the query API's bearer token(s).",
    )
    indexer_auto_transcribe: bool = Field(
        default=False, description="Start Telnyx transcription on every `call.answered`."
    )
    indexer_transcription_engine: TranscriptionEngine = Field(
        default="Telnyx",
        description="`transcription_engine` of `transcription_start` (Google, Telnyx, Deepgram, A, B, ...).",
    )
    indexer_transcription_tracks: TranscriptionTracks = Field(
        default="both", description="`transcription_tracks` of `transcription_start`."
    )
    indexer_settle_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Quiet time after the hang-up before a transcript counts as completed.",
    )
    indexer_batch_size: int = Field(
        default=2000, gt=0, description="Entries read per topic and per batch (one transaction)."
    )
    indexer_block_ms: int = Field(
        default=1000, gt=0, description="Longest wait for new entries in one read."
    )
    indexer_claim_idle_ms: int = Field(
        default=30_000,
        gt=0,
        description="Entries a consumer held this long unacknowledged are claimed by another.",
    )
    indexer_claim_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often idle entries are looked for."
    )
    indexer_max_deliveries: int = Field(
        default=5,
        gt=0,
        description="Deliveries after which a failing entry goes to the dead-letter topic.",
    )
    indexer_consumer_name: str = Field(
        default="", description="Consumer name in the group; empty: host and pid."
    )
    indexer_consumers: int = Field(
        default=2,
        ge=1,
        description="Consumers of the group in this process (named `<consumer name>-<n>` when more than one): "
        "one parses its batch while another's is written.",
    )
    indexer_start: Literal["beginning", "now"] = Field(
        default="beginning", description="Where a new consumer group starts reading."
    )
    indexer_sqlite_busy_timeout_ms: int = Field(
        default=2000,
        ge=0,
        description="How long a SQLite writer waits for another process's lock before retrying later.",
    )
    indexer_pg_pool_size: int = Field(
        default=4, gt=0, description="PostgreSQL connections per process."
    )
    indexer_live_maxlen: int = Field(
        default=10_000, gt=0, description="Bound on each call's live transcript stream."
    )
    indexer_live_ttl_seconds: int = Field(
        default=86_400,
        gt=0,
        description="A call's live transcript stream expires this long after its last entry.",
    )
    indexer_sse_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="Comment sent on a quiet live stream."
    )

    voicetap_retention_days: int | None = Field(
        default=None,
        gt=0,
        description="Calls that ended longer ago lose their recording, transcript, search entries, live stream and "
        "topic entries (`voicetap.call.expired` per call). Unset: keep forever.",
    )
    indexer_retention_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often one indexer process (under a Redis lease) looks for calls past the retention.",
    )
    indexer_retention_batch_size: int = Field(
        default=100, gt=0, description="Calls sent to erasure per batch of a retention sweep."
    )
    indexer_erasure_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long `DELETE /calls/{id}` waits for every service's part of the erasure.",
    )

    @field_validator("indexer_database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        sqlite_path(url, Path())  # raises ValueError naming the accepted forms
        return url

    @model_validator(mode="after")
    def _key_for_auto_transcribe(self) -> "IndexerSettings":
        if self.indexer_auto_transcribe and self.telnyx_api_key is None:
            raise ValueError(
                "INDEXER_AUTO_TRANSCRIBE needs TELNYX_API_KEY (set the key, or turn it off)"
            )
        return self
