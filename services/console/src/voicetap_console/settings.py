"""The console's settings: ``CONSOLE_*`` environment variables on top of the common ones."""

import ipaddress

from pydantic import Field, SecretStr, field_validator

from voicetap_common.settings import CommonSettings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleSettings(CommonSettings):
    console_host: str = Field(
        default="127.0.0.1",
        description="Address the console listens on. It shows call content and has no access control "
        "yet, so only a loopback address is accepted.",
    )
    console_port: int = Field(default=8080, ge=0, le=65535, description="Port of the console.")
    console_indexer_url: str = Field(
        default="http://127.0.0.1:8002", description="The transcript indexer's query API."
    )
    console_indexer_token: SecretStr | None = Field(
        default=None, description="Bearer token of the indexer's query API, when it needs one."
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

    @field_validator("console_host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if not is_loopback(host):
            raise ValueError(
                "must be a loopback address (127.0.0.1, ::1, localhost): the console shows call "
                "content and has no access control yet"
            )
        return host
