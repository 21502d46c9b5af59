"""``voicetap keys``: a local Ed25519 key pair for development."""

import base64

from nacl.signing import SigningKey


def make_key_pair() -> tuple[str, str]:
    """(private, public), both base64; the public one is what ``TELNYX_PUBLIC_KEY`` takes."""
    key = SigningKey.generate()
    return base64.b64encode(bytes(key)).decode(), base64.b64encode(bytes(key.verify_key)).decode()
