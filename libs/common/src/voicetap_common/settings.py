"""Settings every service shares, read from the environment (never from code edits).

Each service subclasses :class:`CommonSettings` with its own prefixed fields, so one typed object
holds everything a process reads.
"""

import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError
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
    voicetap_tombstone_seconds: int = Field(
        default=30 * 86_400,
        gt=0,
        description="How long an erased call's tombstone lasts: meanwhile a late webhook or transcription about it "
        "is acknowledged and not stored. At least `GATEWAY_DEDUPE_WINDOW_SECONDS` (Telnyx retries within it).",
    )
    voicetap_console_url: str = Field(
        default="http://127.0.0.1:8080/",
        description="The console's address: the `/` of every other service links to it.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["json", "console"] = Field(
        default="json", description="`json` (one object per line) or `console` (human-readable)."
    )


S = TypeVar("S", bound=BaseSettings)
_SECRET_WORDS = ("key", "token", "secret", "password")


def env_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable a field is read from."""
    info = model.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, str):
        return alias.upper()
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def settings_errors(model: type[BaseSettings], error: ValidationError) -> list[str]:
    """One line per bad setting: the variable, the value (unless it is a credential) and what it
    must look like, without pydantic's boilerplate."""
    lines = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        message = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not field:  # a check across settings: its input is every setting, credentials included
            lines.append(message)
            continue
        name = env_name(model, field)
        if any(word in field for word in _SECRET_WORDS) or item["type"] == "missing":
            lines.append(f"{name}: {message}")
        else:
            lines.append(f"{name}={item['input']!r}: {message}")
    return lines


def load_settings(model: type[S], program: str) -> S:
    """Read ``model`` from the environment, or exit with status 2 and one line per bad setting."""
    try:
        return model()
    except ValidationError as exc:
        for line in settings_errors(model, exc):
            print(f"{program}: invalid setting {line}", file=sys.stderr)
        raise SystemExit(2) from None
