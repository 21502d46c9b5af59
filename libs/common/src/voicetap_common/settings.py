"""Settings every service shares, read from the environment (never from code edits).

Each service subclasses :class:`CommonSettings` with its own prefixed fields, so one typed object
holds everything a process reads.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis (or Valkey) server that holds the topics. `voicetap up` starts an embedded one when unset.",
    )
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL names one node of a Redis Cluster; the others are discovered.",
    )
    redis_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Bound on one Redis round trip; past it the caller treats Redis as unavailable.",
    )
    voicetap_data_dir: Path = Field(
        default=Path(".voicetap"),
        description="Where recordings, databases and embedded Redis data live.",
    )
    topic_maxlen: int = Field(
        default=1_000_000,
        gt=0,
        description="Approximate bound on the length of every topic (XADD MAXLEN ~).",
    )
    topic_partitions: int = Field(
        default=1,
        ge=1,
        description="Above 1: every `telnyx.*` topic and voicetap's per-call event topics are split into this many "
        "streams `<topic>:p<k>`, k = crc32(call_control_id) mod N, so one topic's load spreads over a cluster's nodes "
        "(`TOPIC_MAXLEN` bounds each). The same for every process of a deployment; drain the topics before changing it.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["json", "console"] = Field(
        default="json", description="`json` (one object per line) or `console` (human-readable)."
    )
