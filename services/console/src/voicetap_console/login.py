"""The browser's way in when ``VOICETAP_API_TOKEN`` is set: ``GET /login`` (a form asking for one of
the tokens), ``POST /login`` (checked in constant time; a wrong token is refused like any other
credential: 401, counted and logged without it) and ``POST /logout``.

A right token sets an HttpOnly, SameSite=Strict cookie (Secure over https) holding a session value
signed with the key of that token (``voicetap_common.access.session_keys``): it lasts its expiry,
or until that token is removed from ``VOICETAP_API_TOKEN``, whichever comes first. The guard
(``AccessGuard`` with ``session_cookie``) accepts it on every other route.
"""

from urllib.parse import parse_qs

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from voicetap_common.access import Verdict, session_keys, session_value, token_accepted
from voicetap_common.access_http import Refusals

SESSION_COOKIE = "voicetap_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
MAX_FORM_BYTES = 8192


def safe_next(target: str) -> str:
    """Where to go after logging in: a path of this console, never another site (browsers read
    ``//host``, ``/\\host`` and ``/<tab>/host`` as another site: whitespace and control characters
    are dropped before a URL is parsed)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    return target


class Login:
    def __init__(
        self, env: Environment, tokens: tuple[str, ...], ttl_seconds: int, refusals: Refusals
    ) -> None:
        self._env = env
        self._tokens = tokens
        self._keys = session_keys(tokens)
        self._ttl = ttl_seconds
        self._refusals = refusals

    def _form(self, next_: str, status: int = 200, problem: str | None = None) -> HTMLResponse:
        page = self._env.get_template("login.html").render(next=next_, problem=problem)
        return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})

    async def page(self, request: Request) -> Response:
        return self._form(safe_next(request.query_params.get("next", "/")))

    async def submit(self, request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return HTMLResponse("form too large", status_code=413)
        form = parse_qs(body.decode("utf-8", "replace"))
        presented = form.get("token", [""])[0].strip()
        next_ = safe_next(form.get("next", ["/"])[0])
        key = self._key_of(presented)
        if key is None:
            verdict = Verdict.WRONG_TOKEN if presented else Verdict.MISSING
            self._refusals.refused(verdict, "POST", LOGIN_PATH)
            return self._form(next_, 401, "That token is not accepted.")
        response = RedirectResponse(next_, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session_value(key, self._ttl),
            max_age=self._ttl,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _key_of(self, presented: str) -> bytes | None:
        """The session key of the token presented, every token compared (constant time)."""
        found = None
        for token, key in zip(self._tokens, self._keys, strict=True):
            if token_accepted(presented, (token,)):
                found = key
        return found

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response
