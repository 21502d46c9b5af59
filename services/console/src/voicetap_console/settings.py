"""The console's settings: ``CONSOLE_*`` environment variables on top of the common ones."""

from pydantic import Field, SecretStr

from voicetap_common.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    console_host: str = Field(
        default="127.0.0.1",
        description="Address the console listens on. Beyond loopback it needs `VOICETAP_API_TOKEN` (a "
        "browser logs in with one of its tokens) or `VOICETAP_INSECURE_NO_AUTH`.",
    )
    console_port: int = Field(default=8080, ge=0, le=65535, description="Port of the console.")
    console_indexer_url: str = Field(
        default="http://127.0.0.1:8002", description="The transcript indexer's query API."
    )
    console_indexer_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the indexer's query API; unset: the first `VOICETAP_API_TOKEN`, "
        "also the ingest's bearer for recordings.",
    )
    console_ingest_url: str = Field(
        default="http://127.0.0.1:8001", description="media_ingest, which serves the recordings."
    )
    console_gateway_url: str = Field(
        default="http://127.0.0.1:8000", description="The webhook gateway, for its health on /ops."
    )
    console_recent_calls: int = Field(
        default=100, ge=1, le=10_000, description="Ended calls kept on the live calls page."
    )
    console_history_seconds: float = Field(
        default=6 * 3600,
        ge=0,
        description="At start, calls of this long ago are read back from the topics.",
    )
    console_session_seconds: int = Field(
        default=12 * 3600,
        ge=60,
        description="How long a browser stays logged in to the console (with `VOICETAP_API_TOKEN`).",
    )
