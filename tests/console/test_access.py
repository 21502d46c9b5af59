"""The console behind ``VOICETAP_API_TOKEN``: a real console process over the test Redis, asked
over real HTTP. A browser logs in once (``/login``) and carries a session cookie; scripts and event
streams without it get 401; removing a token from the list ends its sessions; its upstream calls
carry the stack's bearer."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telnyx_simulator.serve import serve
from voicetap_cli.embedded_redis import free_port

HTML = {"accept": "text/html,application/xhtml+xml"}
CONSOLE = [sys.executable, "-m", "voicetap_cli.run", "console"]


@contextmanager
def console(redis_url: str, env: Mapping[str, str]) -> Iterator[str]:
    """A console process on a free loopback port, answering ``/healthz``; stopped by SIGINT."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("VOICETAP_", "CONSOLE_"))}
    full.update(
        REDIS_URL=redis_url,
        CONSOLE_PORT=str(port),
        CONSOLE_INDEXER_URL=nowhere,
        CONSOLE_INGEST_URL=nowhere,
        CONSOLE_GATEWAY_URL=nowhere,
        LOG_FORMAT="console",
    )
    full.update(env)
    process = subprocess.Popen(
        CONSOLE, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "the console did not answer /healthz in 30 s"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def log_in(url: str, token: str, next_: str = "/") -> httpx.Response:
    return httpx.post(
        url + "/login", data={"token": token, "next": next_}, follow_redirects=False, timeout=5
    )


def refused(url: str, reason: str) -> float:
    found = re.search(
        rf'voicetap_http_refused_total\{{reason="{reason}",service="console"\}} (\S+)',
        httpx.get(url + "/metrics", timeout=5).text,
    )
    return float(found.group(1)) if found else 0.0


def test_a_browser_logs_in_with_a_token_and_then_sees_the_pages(redis_url: str) -> None:
    with console(redis_url, {"VOICETAP_API_TOKEN": "right-token"}) as url:
        asked = httpx.get(url + "/search?q=refund", headers=HTML, timeout=5)
        assert asked.status_code == 303
        assert asked.headers["location"] == "/login?next=%2Fsearch%3Fq%3Drefund"
        assert httpx.get(url + "/", headers=HTML, timeout=5).headers["location"] == (
            "/login?next=%2F"
        )
        form = httpx.get(url + "/login?next=/ops", timeout=5)
        assert form.status_code == 200
        assert '<label for="token">' in form.text and 'id="token"' in form.text
        assert 'name="next" value="/ops"' in form.text
        assert httpx.get(url + "/static/console.css", timeout=5).status_code == 200

        wrong = log_in(url, "wrong-token", "/ops")
        assert wrong.status_code == 401 and "not accepted" in wrong.text
        assert "set-cookie" not in wrong.headers and "wrong-token" not in wrong.text
        assert refused(url, "wrong_token") == 1.0

        right = log_in(url, "right-token", "/search?q=refund")
        assert right.status_code == 303 and right.headers["location"] == "/search?q=refund"
        cookie = right.headers["set-cookie"].lower()
        assert cookie.startswith("voicetap_session=") and "right-token" not in cookie
        for attribute in ("httponly", "samesite=strict", "max-age=43200", "path=/"):
            assert attribute in cookie, cookie
        assert "secure" not in cookie  # plain http: a Secure cookie would never come back
        session = dict(right.cookies)
        page = httpx.get(url + "/", headers=HTML, cookies=session, timeout=5)
        assert page.status_code == 200 and "Live calls" in page.text and "Log out" in page.text
        with httpx.stream("GET", url + "/events/calls", cookies=session, timeout=5) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")

        assert log_in(url, "right-token", "https://evil.example/").headers["location"] == "/"
        out = httpx.post(url + "/logout", cookies=session, timeout=5)
        assert out.status_code == 303 and 'voicetap_session=""' in out.headers["set-cookie"]


def test_streams_and_the_api_without_a_session_answer_401(redis_url: str) -> None:
    with console(redis_url, {"VOICETAP_API_TOKEN": "right-token"}) as url:
        before = refused(url, "missing")
        for path in (
            "/events/calls",
            "/events/calls/v3:x",
            "/api/calls",
            "/calls/v3:x/transcript.json",
        ):
            answer = httpx.get(url + path, headers={"accept": "text/event-stream"}, timeout=5)
            assert answer.status_code == 401, path
            assert answer.json()["reason"] == "missing"
        forged = httpx.get(url + "/api/calls", cookies={"voicetap_session": "99999999999.00"})
        assert forged.status_code == 401 and forged.json()["reason"] == "bad_session"
        assert refused(url, "missing") == before + 4
        assert httpx.get(url + "/readyz", timeout=5).status_code in (200, 503)


def test_removing_a_token_ends_the_sessions_opened_with_it(redis_url: str) -> None:
    with console(redis_url, {"VOICETAP_API_TOKEN": "old-token,new-token"}) as url:
        with_old = dict(log_in(url, "old-token").cookies)
        with_new = dict(log_in(url, "new-token").cookies)
        for session in (with_old, with_new):
            assert httpx.get(url + "/", headers=HTML, cookies=session).status_code == 200
    with console(redis_url, {"VOICETAP_API_TOKEN": "new-token"}) as url:
        assert httpx.get(url + "/", headers=HTML, cookies=with_new).status_code == 200
        stale = httpx.get(url + "/", headers=HTML, cookies=with_old)
        assert stale.status_code == 303 and stale.headers["location"].startswith("/login")
        api = httpx.get(url + "/api/calls", cookies=with_old)
        assert api.status_code == 401 and api.json()["reason"] == "bad_session"
        assert refused(url, "bad_session") == 2.0


def test_without_a_token_the_console_on_loopback_asks_nothing(redis_url: str) -> None:
    with console(redis_url, {}) as url:
        assert httpx.get(url + "/", headers=HTML, timeout=5).status_code == 200
        assert httpx.get(url + "/login", timeout=5).status_code == 404


async def test_upstream_calls_carry_the_stacks_bearer(redis_url: str) -> None:
    """A guarded indexer and ingest stand-in: they answer only the first token of the list."""

    def guarded(answer: Response) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer first-token":
                return JSONResponse({"error": "missing credential"}, status_code=401)
            return answer

        return route

    upstream = Starlette(
        routes=[
            Route("/calls", guarded(JSONResponse({"items": []}))),
            Route(
                "/calls/{ccid}/recording.wav",
                guarded(Response(b"RIFF-wav", media_type="audio/wav")),
            ),
        ]
    )
    async with serve(upstream) as up:
        env = {
            "VOICETAP_API_TOKEN": "first-token,second-token",
            "CONSOLE_INDEXER_URL": up,
            "CONSOLE_INGEST_URL": up,
        }
        with console(redis_url, env) as url:
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                bearer = {"authorization": "Bearer second-token"}
                api = await client.get("/api/calls", headers=bearer)
                assert api.status_code == 200 and api.json() == {"items": []}
                wav = await client.get("/recordings/v3:x.wav", headers=bearer)
                assert wav.status_code == 200 and wav.content == b"RIFF-wav"


@pytest.mark.parametrize("env", [{}, {"VOICETAP_API_TOKEN": " , "}])
def test_beyond_loopback_without_a_token_the_console_refuses_to_start_in_one_line(
    env: dict[str, str],
) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("VOICETAP_", "CONSOLE_"))}
    full.update(CONSOLE_HOST="0.0.0.0", **env)
    done = subprocess.run(CONSOLE, env=full, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("voicetap console: CONSOLE_HOST=0.0.0.0 ")
    assert "VOICETAP_API_TOKEN" in lines[0]
