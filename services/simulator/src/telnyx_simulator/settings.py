"""What ``voicetap simulate`` reads from the environment: where the stack is, and its keys.

The variables are those the stack itself reads (``voicetap up`` hands the same ones to the
demo), so the simulator finds a stack started with the same environment without any option.
"""

from pydantic import Field

from voicetap_common.access import parse_tokens
from voicetap_common.settings import CommonSettings


class SimulatorSettings(CommonSettings):
    # Optional here, unlike in the services (unset: the embedded Redis of `voicetap up`); mypy
    # refuses a subclass widening a field's type.
    redis_url: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="The stack's Redis, for the topic checks; unset: the embedded one of `voicetap up`.",
    )
    voicetap_embedded_redis_port: int = Field(
        default=6399, description="Port of the embedded Redis."
    )
    gateway_port: int = Field(default=8000, description="Port of the gateway on 127.0.0.1.")
    ingest_port: int = Field(default=8001, description="Port of media_ingest on 127.0.0.1.")
    indexer_port: int = Field(default=8002, description="Port of transcript_indexer on 127.0.0.1.")
    console_port: int = Field(default=8080, description="Port of the console on 127.0.0.1.")
    simulator_api_port: int = Field(default=8090, description="Port the fake Telnyx API serves on.")
    telnyx_api_key: str | None = Field(
        default=None, description="The key the fake API accepts; unset: the local development key."
    )
    indexer_api_token: str | None = Field(
        default=None, description="Bearer token of the indexer's query API, when it needs one."
    )

    def stack_token(self) -> str | None:
        """The bearer the stack accepts: the first of ``VOICETAP_API_TOKEN``, else the indexer's
        alias."""
        common = self.voicetap_api_token.get_secret_value() if self.voicetap_api_token else ""
        tokens = parse_tokens(common or self.indexer_api_token)
        return tokens[0] if tokens else None

    def stack_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.voicetap_embedded_redis_port}/0"
