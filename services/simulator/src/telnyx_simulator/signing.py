"""Signing webhooks the way Telnyx does: Ed25519 over ``f"{timestamp}|{raw_body}"``."""

import base64
import time
from dataclasses import dataclass

from nacl.signing import SigningKey


@dataclass(frozen=True)
class WebhookSigner:
    """Holds a private key; its public half (base64) is what ``TELNYX_PUBLIC_KEY`` takes."""

    signing_key: SigningKey

    @classmethod
    def generate(cls) -> "WebhookSigner":
        return cls(SigningKey.generate())

    @classmethod
    def from_private_key(cls, private_key_b64: str) -> "WebhookSigner":
        return cls(SigningKey(base64.b64decode(private_key_b64, validate=True)))

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self.signing_key.verify_key)).decode()

    @property
    def private_key(self) -> str:
        return base64.b64encode(bytes(self.signing_key)).decode()

    def sign(self, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
        """The two headers Telnyx sends with ``body``, signed now unless ``timestamp`` is given."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.signing_key.sign(ts.encode() + b"|" + body).signature
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": ts,
            "content-type": "application/json",
        }
