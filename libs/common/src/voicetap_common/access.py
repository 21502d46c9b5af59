"""voicetap's one credential model, the pure parts (no I/O): the token set, the constant-time check,
signed links and the console's session value.

- ``VOICETAP_API_TOKEN`` holds one or more tokens, comma-separated: during a rotation both the old
  and the new token are accepted. A presented token is compared with *every* configured token
  (``hmac.compare_digest``, no early exit), so the time taken says nothing about which matched.
- A signed link carries ``expires`` (Unix seconds) and ``signature`` = HMAC-SHA256 over
  ``path|expires``: valid for that path only, until that time. Its key is
  ``VOICETAP_LINK_SECRET``, else derived from the first token (so rotating the first token
  invalidates the links minted with it).
- The console's session value is ``<expires>.<HMAC over "session|<expires>">``, keyed by a key
  derived from the token the browser logged in with (``session_keys``), never from
  ``VOICETAP_LINK_SECRET``: a session lasts only while that token is configured, so removing a token
  from ``VOICETAP_API_TOKEN`` also ends every session opened with it.
"""

import dataclasses
import enum
import hashlib
import hmac
import ipaddress
import time
from typing import Literal
from urllib.parse import quote

LINK_KEY_LABEL = b"voicetap link key v1"
SESSION_KEY_LABEL = b"voicetap console session key v1"


def parse_tokens(raw: str | None) -> tuple[str, ...]:
    """The tokens of a comma-separated ``VOICETAP_API_TOKEN``, blanks dropped."""
    if not raw:
        return ()
    return tuple(token.strip() for token in raw.split(",") if token.strip())


def token_accepted(presented: str, tokens: tuple[str, ...]) -> bool:
    """Whether ``presented`` is one of ``tokens``, compared in constant time against each."""
    given = presented.encode()
    accepted = False
    for token in tokens:
        accepted |= hmac.compare_digest(given, token.encode())
    return accepted


def link_key(link_secret: str | None, tokens: tuple[str, ...]) -> bytes | None:
    """The key links are signed with: the secret, else one derived from the first token; None when
    neither is configured (no link can be minted or accepted)."""
    if link_secret:
        return link_secret.encode()
    if tokens:
        return hmac.new(tokens[0].encode(), LINK_KEY_LABEL, hashlib.sha256).digest()
    return None


def _sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def link_signature(key: bytes, path: str, expires: int) -> str:
    return _sign(key, f"{path}|{expires}")


def link_query(key: bytes, path: str, ttl_seconds: int, now: float | None = None) -> str:
    """The query string (``expires=…&signature=…``) that opens ``path`` for ``ttl_seconds``."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return f"expires={expires}&signature={link_signature(key, path, expires)}"


LinkTarget = Literal["recording", "transcript"]
LINK_PATHS: dict[LinkTarget, str] = {
    "recording": "/calls/{}/recording.wav",  # served by the ingest
    "transcript": "/calls/{}/transcript",  # served by the indexer
}
MAX_LINK_TTL_SECONDS = 7 * 86_400


def link_path(call_control_id: str, what: LinkTarget) -> str:
    """The (decoded) path a link to ``what`` of the call opens: what its signature covers."""
    return LINK_PATHS[what].format(call_control_id)


def signed_url(base: str, key: bytes, path: str, ttl_seconds: int, now: float | None = None) -> str:
    """``base`` + the path (percent-encoded) + the link's query."""
    return f"{base.rstrip('/')}{quote(path)}?{link_query(key, path, ttl_seconds, now)}"


class Verdict(enum.Enum):
    """Why a request is let through or refused; a refusal's value is the metric's ``reason``."""

    OK = "ok"
    MISSING = "missing"
    WRONG_TOKEN = "wrong_token"
    TAMPERED_LINK = "tampered_link"
    EXPIRED_LINK = "expired_link"
    LINK_READ_ONLY = "link_read_only"
    BAD_SESSION = "bad_session"
    EXPIRED_SESSION = "expired_session"


def check_link(
    key: bytes | None, path: str, expires: str, signature: str, now: float | None = None
) -> Verdict:
    """A link's verdict: tampered (a bad signature, or another path) before expired, so an
    expiry moved forward by hand says tampered."""
    if key is None or not expires.isdigit() or len(expires) > 12:
        return Verdict.TAMPERED_LINK
    if not hmac.compare_digest(
        signature.encode(), link_signature(key, path, int(expires)).encode()
    ):
        return Verdict.TAMPERED_LINK
    if int(expires) < (time.time() if now is None else now):
        return Verdict.EXPIRED_LINK
    return Verdict.OK


def session_keys(tokens: tuple[str, ...]) -> tuple[bytes, ...]:
    """One session key per configured token, in the same order: a session is signed with the key
    of the token it was opened with and accepted while that token is configured."""
    return tuple(hmac.new(t.encode(), SESSION_KEY_LABEL, hashlib.sha256).digest() for t in tokens)


def session_value(key: bytes, ttl_seconds: int, now: float | None = None) -> str:
    """A browser session's cookie value for the console, valid ``ttl_seconds``."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return f"{expires}.{_sign(key, f'session|{expires}')}"


def check_session(key: bytes | None, value: str, now: float | None = None) -> Verdict:
    expires, _, signature = value.partition(".")
    if key is None or not expires.isdigit() or len(expires) > 12:
        return Verdict.BAD_SESSION
    if not hmac.compare_digest(signature.encode(), _sign(key, f"session|{expires}").encode()):
        return Verdict.BAD_SESSION
    if int(expires) < (time.time() if now is None else now):
        return Verdict.EXPIRED_SESSION
    return Verdict.OK


def check_session_keys(keys: tuple[bytes, ...], value: str, now: float | None = None) -> Verdict:
    """A session's verdict under any of ``keys`` (each checked, no early exit): OK when one signed
    it and it has not expired; expired when one signed it; else bad."""
    verdicts = {check_session(key, value, now) for key in keys}
    for verdict in (Verdict.OK, Verdict.EXPIRED_SESSION):
        if verdict in verdicts:
            return verdict
    return Verdict.BAD_SESSION


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """What a service's HTTP guard checks, as plain values taken from the settings."""

    tokens: tuple[str, ...]
    link_key: bytes | None
    metrics_token: str | None
    insecure_no_auth: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_bind_refusal(
    host: str, tokens: tuple[str, ...], insecure: bool, program: str, variable: str
) -> str | None:
    """The one line a service prints before refusing to start (None: it may start): it listens on
    ``host`` (named by ``variable``) beyond loopback with no token and no explicit insecure mode."""
    if tokens or insecure or is_loopback(host):
        return None
    return (
        f"{program}: {variable}={host} listens beyond loopback and no VOICETAP_API_TOKEN is set: "
        "set VOICETAP_API_TOKEN (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1, or set "
        "VOICETAP_INSECURE_NO_AUTH=true to serve recordings and transcripts to anyone"
    )
