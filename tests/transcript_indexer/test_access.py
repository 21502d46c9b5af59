"""Every route of the indexer × every kind of credential, over real HTTP: the bearer tokens of a
rotation, signed links (valid, for another path, tampered, expired), none or a wrong one."""

import logging
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from redis.asyncio import Redis

from tests.transcript_indexer.harness import indexer_settings, running_indexer
from voicetap_common.access import check_link, link_key, link_query

TOKENS = ("old-token-7f3a", "new-token-91bc")
METRICS_TOKEN = "metrics-token-55d0"
CALL = "v3:acc-1"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# method, path, query, statuses of an admitted request
ROUTES: list[tuple[str, str, dict[str, str], set[int]]] = [
    ("GET", "/calls", {}, {200}),
    ("GET", f"/calls/{CALL}", {}, {404}),
    ("GET", f"/calls/{CALL}/transcript", {}, {404}),
    ("GET", f"/calls/{CALL}/transcript/live", {}, {404}),
    ("GET", "/search", {"q": "billing"}, {200}),
    ("POST", f"/calls/{CALL}/links", {}, {201}),
    ("DELETE", f"/calls/{CALL}", {}, {200, 504}),  # 504: no ingest answers its part
]


def _link(path: str, *, ttl: int = 600, now: float | None = None) -> dict[str, str]:
    key = link_key(None, TOKENS)
    assert key is not None
    return dict(part.split("=") for part in link_query(key, path, ttl, now).split("&"))


def _tampered(path: str) -> dict[str, str]:
    link = _link(path)
    return {**link, "expires": str(int(link["expires"]) + 86_400)}


@pytest.fixture
def settings_kwargs(tmp_path: Path) -> dict[str, object]:
    return {
        "voicetap_api_token": ",".join(TOKENS),
        "voicetap_metrics_token": METRICS_TOKEN,
        "indexer_erasure_timeout_seconds": 0.3,
    }


async def test_every_route_takes_each_rotated_token_or_its_own_link_and_nothing_else(
    redis: Redis,
    redis_url: str,
    tmp_path: Path,
    settings_kwargs: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, **settings_kwargs
    )
    caplog.set_level(logging.WARNING, "voicetap.access")
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as http:
        for method, path, query, admitted in ROUTES:

            async def ask(
                params: dict[str, str],
                headers: dict[str, str],
                method: str = method,
                path: str = path,
            ) -> httpx.Response:
                return await http.request(method, quote(path), params=params, headers=headers)

            for token in TOKENS:
                answer = await ask(query, bearer(token))
                assert answer.status_code in admitted, (method, path, token, answer.text)
            cases: list[tuple[str, dict[str, str], dict[str, str], int, str]] = [
                ("none", query, {}, 401, "missing"),
                ("wrong", query, bearer("not-the-token"), 401, "wrong_token"),
                ("basic", query, {"authorization": f"Basic {TOKENS[0]}"}, 401, "wrong_token"),
                ("metrics", query, bearer(METRICS_TOKEN), 401, "wrong_token"),
                ("tampered", {**query, **_tampered(path)}, {}, 401, "tampered_link"),
                ("other path", {**query, **_link("/calls/v3:other")}, {}, 401, "tampered_link"),
                (
                    "expired",
                    {**query, **_link(path, ttl=60, now=time.time() - 3600)},
                    {},
                    403,
                    "expired_link",
                ),
            ]
            for name, params, headers, status, reason in cases:
                if method != "GET" and "signature" in params:  # any link, before its check
                    status, reason = 401, "link_read_only"
                answer = await ask(params, headers)
                assert answer.status_code == status, (method, path, name, answer.text)
                assert answer.json()["reason"] == reason, (method, path, name)
            link_answer = await ask({**query, **_link(path)}, {})
            if method == "GET":
                assert link_answer.status_code in admitted, (path, link_answer.text)
            else:  # a link opens a page for reading, never a change
                assert link_answer.status_code == 401, (method, path, link_answer.text)
                assert link_answer.json()["reason"] == "link_read_only"

        # probes stay open; /metrics takes its own token only
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=bearer(TOKENS[0]))).status_code == 401
        metrics = (await http.get("/metrics", headers=bearer(METRICS_TOKEN))).text
        assert 'voicetap_http_refused_total{reason="missing",service="indexer"}' in metrics
        assert 'voicetap_http_refused_total{reason="expired_link",service="indexer"}' in metrics

    logged = [r for r in caplog.records if r.name == "voicetap.access"]
    reasons = [r.__dict__["reason"] for r in logged]
    # rate-limited: one warning per reason in this short test, though each was refused many times
    assert sorted(reasons) == sorted(set(reasons)) and "wrong_token" in reasons
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in logged)
    for secret in (*TOKENS, METRICS_TOKEN, "not-the-token"):
        assert secret not in text


async def test_minted_links_open_their_path(
    redis: Redis, redis_url: str, tmp_path: Path, settings_kwargs: dict[str, object]
) -> None:
    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        voicetap_public_ingest_url="https://ingest.example:8443",
        **settings_kwargs,
    )
    headers = {"authorization": f"Bearer {TOKENS[1]}"}
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as http:
        minted = await http.post(
            f"/calls/{CALL}/links", json={"what": "transcript", "ttl_seconds": 120}, headers=headers
        )
        assert minted.status_code == 201, minted.text
        body = minted.json()
        assert body["url"].startswith(url) and abs(body["expires"] - time.time() - 120) < 5
        opened = await http.get(body["url"])  # no header: the link is the credential
        assert opened.status_code == 404 and opened.json()["error"] == f"no call {CALL}"

        recording = (await http.post(f"/calls/{CALL}/links", headers=headers)).json()
        assert recording["url"].startswith("https://ingest.example:8443/calls/v3%3Aacc-1/")
        query = dict(p.split("=") for p in recording["path_and_query"].split("?")[1].split("&"))
        verdict = check_link(
            link_key(None, TOKENS),
            f"/calls/{CALL}/recording.wav",
            query["expires"],
            query["signature"],
        )
        assert verdict.value == "ok"

        for bad, message in (
            ({"what": "everything"}, "what must be recording or transcript"),
            ({"ttl_seconds": 0}, "ttl_seconds must be an integer between 1 and"),
            ({"ttl_seconds": 10**9}, "ttl_seconds must be an integer between 1 and"),
        ):
            answer = await http.post(f"/calls/{CALL}/links", json=bad, headers=headers)
            assert answer.status_code == 400 and message in answer.json()["error"]
