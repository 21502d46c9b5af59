"""``AccessGuard``: the pure-ASGI middleware that puts every non-Telnyx HTTP route of a service
behind ``VOICETAP_API_TOKEN`` (or a signed link), and counts and logs what it refuses.

| request | needs |
| --- | --- |
| ``open_paths`` (``/healthz``, ``/readyz``, ``/``) | nothing: probes carry no credential, ``/`` only links to the console |
| ``/metrics`` | ``Authorization: Bearer <VOICETAP_METRICS_TOKEN>`` when that is set, else nothing |
| anything else over HTTP | ``Authorization: Bearer <one of the tokens>``, or for GET/HEAD a link's ``?expires=…&signature=…`` minted for that very path |
| WebSocket scopes (``/streams/telnyx``) | untouched: Telnyx's per-call token |

With ``session_cookie`` set (the console), a valid browser session cookie (``access.session_value``
under one of ``session_keys``) is a credential too, and a refused ``GET`` or ``HEAD`` asking for a
page (``Accept: text/html``) is redirected (303) to ``login_path?next=<what it asked for>`` instead
of answered 401; event streams and API requests still get the 401.

The gateway's ``/webhooks/telnyx`` never reaches the guard: ``GatewayApp`` sends it straight to the
endpoint, which checks the Ed25519 signature.

Missing, wrong or tampered credentials answer 401, an expired link 403; the body says which.
Without any token configured the guard lets everything through: ``main`` only starts a service so
on loopback or with ``VOICETAP_INSECURE_NO_AUTH`` (``voicetap_common.settings.refuse_open_bind``).
"""

import logging
import time
from urllib.parse import parse_qs, quote

from prometheus_client import CollectorRegistry, Counter
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from voicetap_common.access import Verdict, check_link, check_session_keys, token_accepted

log = logging.getLogger("voicetap.access")

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
PUBLIC_PATHS = PROBE_PATHS | {"/"}
"""What a service other than the console answers without a credential: the probes, and ``/`` (a
page naming the service and linking to the console)."""
METRICS_PATH = "/metrics"
WARN_EVERY_SECONDS = 10.0
_LINK_METHODS = frozenset({"GET", "HEAD"})

_MESSAGES = {
    Verdict.MISSING: "missing credential: send Authorization: Bearer <VOICETAP_API_TOKEN>",
    Verdict.WRONG_TOKEN: "wrong token",
    Verdict.TAMPERED_LINK: "tampered link: its signature does not match its path and expiry",
    Verdict.EXPIRED_LINK: "expired link: mint a new one (voicetap link)",
    Verdict.LINK_READ_ONLY: "a link opens a page for reading (GET) only: send the bearer token",
    Verdict.BAD_SESSION: "session not valid (its token is no longer configured?): log in again",
    Verdict.EXPIRED_SESSION: "session expired: log in again",
}


def refused_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "voicetap_http_refused_total",
        "HTTP requests refused for want of a valid credential, by reason",
        ["service", "reason"],
        registry=registry,
    )


class Refusals:
    """Counts every refusal in ``voicetap_http_refused_total`` and logs at most one warning per
    reason every ``WARN_EVERY_SECONDS``; never the credential. The guard's, and the console's login
    form's (a wrong token typed there is refused the same way)."""

    def __init__(self, counter: Counter, service: str) -> None:
        self._counter = counter
        self._service = service
        self._last: dict[Verdict, float] = {}
        self._suppressed: dict[Verdict, int] = {}

    def refused(self, verdict: Verdict, method: str, path: str) -> None:
        self._counter.labels(self._service, verdict.value).inc()
        now = time.monotonic()
        last = self._last.get(verdict)
        if last is not None and now - last < WARN_EVERY_SECONDS:
            self._suppressed[verdict] = self._suppressed.get(verdict, 0) + 1
            return
        self._last[verdict] = now
        log.warning(
            "request refused",
            extra={
                "service": self._service,
                "reason": verdict.value,
                "method": method,
                "path": path,
                "suppressed_since_last": self._suppressed.pop(verdict, 0),
            },
        )


class AccessGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: tuple[str, ...],
        link_key: bytes | None,
        metrics_token: str | None,
        refused: Counter,
        service: str,
        open_paths: frozenset[str] = PUBLIC_PATHS,
        session_cookie: str | None = None,
        session_keys: tuple[bytes, ...] = (),
        login_path: str | None = None,
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._link_key = link_key
        self._metrics_tokens = (metrics_token,) if metrics_token else ()
        self._open = open_paths
        self._refusals = Refusals(refused, service)
        self._session_cookie = session_cookie
        self._session_keys = session_keys
        self._login_path = login_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        verdict = self._verdict(scope)
        if verdict is Verdict.OK:
            await self._app(scope, receive, send)
            return
        self._refusals.refused(verdict, scope["method"], scope["path"])
        if self._login_path is not None and _asks_for_a_page(scope):
            query = scope.get("query_string", b"").decode("latin-1")
            asked = scope["path"] + (f"?{query}" if query else "")
            target = f"{self._login_path}?next={quote(asked, safe='')}"
            await RedirectResponse(target, status_code=303)(scope, receive, send)
            return
        status = 403 if verdict is Verdict.EXPIRED_LINK else 401
        headers = {"www-authenticate": "Bearer"} if status == 401 else {}
        response = JSONResponse(
            {"error": _MESSAGES[verdict], "reason": verdict.value},
            status_code=status,
            headers=headers,
        )
        await response(scope, receive, send)

    def _verdict(self, scope: Scope) -> Verdict:
        path: str = scope["path"]
        if path == METRICS_PATH:
            return self._bearer(scope, self._metrics_tokens) if self._metrics_tokens else Verdict.OK
        if not self._tokens:
            return Verdict.OK
        bearer = self._bearer(scope, self._tokens)
        if bearer is not Verdict.MISSING:
            return bearer
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "signature" in query or "expires" in query:
            if scope["method"] not in _LINK_METHODS:
                return Verdict.LINK_READ_ONLY
            expires = query.get("expires", [""])[0]
            signature = query.get("signature", [""])[0]
            return check_link(self._link_key, path, expires, signature)
        if self._session_cookie is not None:
            cookie = _header(scope, b"cookie").decode("latin-1")
            session = cookie_parser(cookie).get(self._session_cookie) if cookie else None
            if session:
                return check_session_keys(self._session_keys, session)
        return Verdict.MISSING

    @staticmethod
    def _bearer(scope: Scope, tokens: tuple[str, ...]) -> Verdict:
        header = _header(scope, b"authorization")
        if not header:
            return Verdict.MISSING
        scheme, _, presented = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token_accepted(presented.strip(), tokens):
            return Verdict.WRONG_TOKEN
        return Verdict.OK


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return b""


def _asks_for_a_page(scope: Scope) -> bool:
    """A browser navigating (GET/HEAD, HTML accepted), not a script's fetch or an event stream."""
    return scope["method"] in _LINK_METHODS and b"text/html" in _header(scope, b"accept")
