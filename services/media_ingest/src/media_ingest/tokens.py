"""Per-call media-stream tokens: issued with streaming_start, checked when Telnyx connects.

Only a SHA-256 of the token is kept in Redis; the check is constant-time.
"""

import hashlib
import hmac
import secrets

from media_ingest.keys import TOKEN_PREFIX, TOKEN_TTL
from media_ingest.redis_values import text
from voicetap_sdk.redis_client import RedisClient


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class StreamTokens:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def issue(self, call_control_id: str, token: str) -> None:
        await self._redis.set(TOKEN_PREFIX + call_control_id, token_digest(token), ex=TOKEN_TTL)

    async def revoke(self, call_control_id: str) -> None:
        await self._redis.delete(TOKEN_PREFIX + call_control_id)

    async def check(self, call_control_id: str, token: str | None) -> bool:
        """Constant-time check of a presented token against the one issued for the call."""
        stored = await self._redis.get(TOKEN_PREFIX + call_control_id)
        presented = token_digest(token or "")
        expected = text(stored) if stored is not None else secrets.token_hex(32)
        return hmac.compare_digest(presented, expected) and stored is not None and bool(token)
