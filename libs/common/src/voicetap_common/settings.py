"""Settings every service shares, read from the environment (never from code edits).

Each service subclasses :class:`CommonSettings` with its own prefixed fields, so one typed object
holds everything a process reads.
"""

import logging
import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicetap_common.access import Access, link_key, open_bind_refusal, parse_tokens


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
    voicetap_api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token(s) of every HTTP route that is not Telnyx's (the indexer's API, the ingest's "
        "recordings, the console), comma-separated so that a token can be rotated without downtime. Required by a "
        "service listening beyond loopback.",
    )
    voicetap_metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, `/metrics` needs `Authorization: Bearer <this>`; unset: `/metrics` is open.",
    )
    voicetap_link_secret: SecretStr | None = Field(
        default=None,
        description="Key of signed links (`voicetap link`); unset: derived from the first `VOICETAP_API_TOKEN`.",
    )
    voicetap_insecure_no_auth: bool = Field(
        default=False,
        description="Development only: serve beyond loopback without `VOICETAP_API_TOKEN`. Logged loudly at every start.",
    )
    voicetap_public_ingest_url: str = Field(
        default="",
        description="Base URL of the ingest's HTTP server as a link's reader reaches it (`voicetap link`, "
        "`POST /calls/{id}/links`); empty: `voicetap link` uses `http://127.0.0.1:<INGEST_PORT>`.",
    )
    voicetap_public_indexer_url: str = Field(
        default="",
        description="Base URL of the indexer's API as a link's reader reaches it; empty: `voicetap link` uses "
        "`http://127.0.0.1:<INDEXER_PORT>`, the API the address it was asked on.",
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


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def access_settings(settings: CommonSettings, tokens: SecretStr | None = None) -> Access:
    """The guard's plain values; ``tokens``: a service's alias of ``VOICETAP_API_TOKEN`` (the
    indexer's ``INDEXER_API_TOKEN``), used when the common variable is unset."""
    parsed = parse_tokens(_secret(settings.voicetap_api_token) or _secret(tokens))
    return Access(
        tokens=parsed,
        link_key=link_key(_secret(settings.voicetap_link_secret), parsed),
        metrics_token=_secret(settings.voicetap_metrics_token),
        insecure_no_auth=settings.voicetap_insecure_no_auth,
    )


def refuse_open_bind(
    host: str, tokens: tuple[str, ...], insecure: bool, program: str, variable: str
) -> None:
    """Exit with status 2 and one line naming the variable to set when the service would listen
    beyond loopback with no token; warn at every start when it does so by
    ``VOICETAP_INSECURE_NO_AUTH``."""
    refusal = open_bind_refusal(host, tokens, insecure, program, variable)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        raise SystemExit(2)
    if insecure and not tokens:
        logging.getLogger("voicetap.access").critical(
            "VOICETAP_INSECURE_NO_AUTH=true: recordings and transcripts are served to anyone who "
            "can reach this address; set VOICETAP_API_TOKEN",
            extra={"program": program, variable.lower(): host},
        )
