"""Settings of the ``voicetap`` command itself (the services read their own)."""

from pydantic import Field

from voicetap_common.settings import CommonSettings


class CliSettings(CommonSettings):
    redis_url: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="When unset, `voicetap up` starts an embedded Redis under VOICETAP_DATA_DIR.",
    )
    voicetap_embedded_redis_port: int = Field(
        default=6399, description="Port of the embedded Redis `voicetap up` starts."
    )
    telnyx_public_key: str | None = Field(
        default=None,
        description="When unset, `voicetap up` makes a development key pair under VOICETAP_DATA_DIR and trusts it.",
    )
    telnyx_api_key: str | None = Field(
        default=None,
        description="When unset, `voicetap up` runs in local mode: Call Control commands go to the simulator's fake API.",
    )
    simulator_api_port: int = Field(
        default=8090,
        description="Port of the simulator's fake Telnyx API, where local mode sends Call Control commands.",
    )
