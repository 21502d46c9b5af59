"""``AccessGuard``: the pure-ASGI middleware that puts every non-Telnyx HTTP route of a service
behind ``VOICETAP_API_TOKEN`` (or a signed link), and counts and logs what it refuses.

| request | needs |
| --- | --- |
| ``open_paths`` (``/healthz``, ``/readyz``, ``/``) | nothing: probes carry no credential, ``/`` only links to the console |
| ``/metrics`` | ``Authorization: Bearer <VOICETAP_METRICS_TOKEN>`` when that is set, else nothing |
| anything else over HTTP | ``Authorization: Bearer <one of the tokens>``, or for GET/HEAD a link's ``?expires=…&signature=…`` minted for that very path |
| WebSocket scopes (``/streams/telnyx``) | untouched: Telnyx's per-call token |

The gateway's ``/webhooks/telnyx`` never reaches the guard: ``GatewayApp`` sends it straight to the
endpoint, which checks the Ed25519 signature.

Missing, wrong or tampered credentials answer 401, an expired link 403; the body says which.
Without any token configured the guard lets everything through: ``main`` only starts a service so
on loopback or with ``VOICETAP_INSECURE_NO_AUTH`` (``voicetap_common.settings.refuse_open_bind``).
"""

import logging
import time
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from voicetap_common.access import Verdict, check_link, token_accepted

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
}


def refused_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "voicetap_http_refused_total",
        "HTTP requests refused for want of a valid credential, by reason",
        ["service", "reason"],
        registry=registry,
    )


class _RateLimitedWarning:
    """At most one warning per reason every ``WARN_EVERY_SECONDS``; never the credential."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._last: dict[Verdict, float] = {}
        self._suppressed: dict[Verdict, int] = {}

    def refused(self, verdict: Verdict, method: str, path: str) -> None:
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
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._link_key = link_key
        self._metrics_tokens = (metrics_token,) if metrics_token else ()
        self._open = open_paths
        self._refused = refused
        self._service = service
        self._warning = _RateLimitedWarning(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        verdict = self._verdict(scope)
        if verdict is Verdict.OK:
            await self._app(scope, receive, send)
            return
        self._refused.labels(self._service, verdict.value).inc()
        self._warning.refused(verdict, scope["method"], scope["path"])
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
        return Verdict.MISSING

    @staticmethod
    def _bearer(scope: Scope, tokens: tuple[str, ...]) -> Verdict:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if not header:
            return Verdict.MISSING
        scheme, _, presented = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token_accepted(presented.strip(), tokens):
            return Verdict.WRONG_TOKEN
        return Verdict.OK
