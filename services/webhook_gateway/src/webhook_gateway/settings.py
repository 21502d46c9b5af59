"""The gateway's settings: one typed object, read from the environment."""

from pydantic import Field, field_validator, model_validator

from voicetap_common.settings import CommonSettings
from webhook_gateway.signature import InvalidPublicKey, load_public_key


class GatewaySettings(CommonSettings):
    gateway_host: str = Field(default="0.0.0.0", description="Address the gateway listens on.")
    gateway_port: int = Field(
        default=8000,
        description="Port of `POST /webhooks/telnyx`, `/healthz`, `/readyz`, `/metrics`.",
    )
    telnyx_public_key: str | None = Field(
        default=None,
        description="The account's Ed25519 public key, base64 (Portal: Keys & Credentials → Public Key). Required.",
    )
    gateway_signature_tolerance_seconds: int = Field(
        default=300,
        ge=0,
        description="Largest accepted difference between `telnyx-timestamp` and now, either way.",
    )
    gateway_max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Larger bodies are refused with 413 while reading."
    )
    gateway_dedupe_window_seconds: int = Field(
        default=86_400,
        gt=0,
        description="A re-delivered `data.id` within this window is answered 200 and not published again.",
    )
    gateway_answer_deadline_seconds: float = Field(
        default=1.5,
        gt=0,
        description="Latest answer to Telnyx (which gives up after 2 s): past it the gateway answers 503 so Telnyx retries.",
    )
    gateway_insecure_skip_verification: bool = Field(
        default=False,
        description="Development only: accept webhooks without checking signatures. Logged loudly at start.",
    )
    gateway_workers: int = Field(default=1, ge=1, description="Server processes sharing the port.")
    topic_max_age_seconds: int = Field(
        default=0,
        ge=0,
        description="When set, the gateway also trims every `telnyx.*` and `voicetap.*` topic to entries younger than this, once a minute (`XTRIM MINID`); 0: by `TOPIC_MAXLEN` only.",
    )

    @field_validator("telnyx_public_key")
    @classmethod
    def _ed25519(cls, value: str | None) -> str | None:
        """A key that cannot verify anything (the example Secret's ``REPLACE-...``) is refused at
        start, not discovered by the first webhook."""
        if value:
            try:
                load_public_key(value)
            except InvalidPublicKey:
                raise ValueError(
                    "is not an Ed25519 public key (base64 of 32 bytes): copy the account's key from "
                    "Portal → Keys & Credentials → Public Key, or unset it under `voicetap up` to "
                    "trust a development key"
                ) from None
        return value

    @model_validator(mode="after")
    def _fail_closed(self) -> "GatewaySettings":
        if not self.telnyx_public_key and not self.gateway_insecure_skip_verification:
            raise ValueError(
                "TELNYX_PUBLIC_KEY is not set: the gateway refuses to start without a key to verify webhooks "
                "(set it to the account's public key; `voicetap keys` makes a development pair)"
            )
        return self

    @model_validator(mode="after")
    def _tombstones_outlast_dedupe(self) -> "GatewaySettings":
        if self.voicetap_tombstone_seconds < self.gateway_dedupe_window_seconds:
            raise ValueError(
                f"VOICETAP_TOMBSTONE_SECONDS ({self.voicetap_tombstone_seconds}) is shorter than "
                f"GATEWAY_DEDUPE_WINDOW_SECONDS ({self.gateway_dedupe_window_seconds}): a webhook Telnyx "
                "re-delivers after an erasure could bring the call back (raise the first or lower the second)"
            )
        return self
