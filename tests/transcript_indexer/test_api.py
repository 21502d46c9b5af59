"""The query API over real HTTP (uvicorn), including the live transcript read as an event stream.

What reads stored data runs on each back end (``database_url``); request validation and the token,
which never reach the database, on SQLite only."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import hangup, initiated, publish, transcription
from transcript_indexer.settings import IndexerSettings


@pytest.fixture
def settings(redis_url: str, database_url: str, tmp_path: Path) -> IndexerSettings:
    return indexer_settings(redis_url, database_url, tmp_path)


@pytest.fixture
async def api(redis: Redis, settings: IndexerSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a running indexer with five calls stored."""
    for n in range(5):
        call = f"api-{n}"
        await publish(
            redis,
            initiated(call, n * 60.0, caller=f"+1555000000{n}"),
            transcription(
                call,
                f"call {n} is about billing" if n % 2 else f"call {n} is about a broken router",
                n * 60.0 + 3,
            ),
            transcription(call, "thanks for waiting", n * 60.0 + 6, track="outbound"),
        )
    async with (
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as client,
    ):

        async def stored() -> bool:
            response = await client.get("/calls/api-4")
            return response.status_code == 200 and response.json()["counts"]["segments"] == 2

        await eventually(stored, message="calls stored")
        yield client


@pytest.fixture
async def bare_api(
    redis: Redis, redis_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An indexer on an empty SQLite database, for requests that are answered before any query."""
    settings = indexer_settings(redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    async with (
        running_indexer(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as client,
    ):
        yield client


async def test_calls_are_paginated_newest_first(api: httpx.AsyncClient) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = (await api.get("/calls", params={"limit": 2, "offset": offset})).json()
        seen += [c["call_control_id"] for c in page["items"]]
        offset = page["next_offset"]
    assert seen == [f"api-{n}" for n in range(4, -1, -1)]


async def test_calls_filter_by_time_number_and_text(api: httpx.AsyncClient) -> None:
    async def ids(**params: object) -> list[str]:
        response = await api.get("/calls", params=params)
        assert response.status_code == 200, response.text
        return [c["call_control_id"] for c in response.json()["items"]]

    assert await ids(since="2026-11-23T12:01:00Z", until="2026-11-23T12:03:00+00:00") == [
        "api-2",
        "api-1",
    ]
    assert await ids(number="+1 (555) 000-0003") == ["api-3"]
    assert await ids(number="15559870002") == [f"api-{n}" for n in range(4, -1, -1)]
    assert await ids(q="billing") == ["api-3", "api-1"]
    assert await ids(q="router", since="2026-11-23T12:01:00Z") == ["api-4", "api-2"]


async def test_call_details_and_unknown_calls(api: httpx.AsyncClient) -> None:
    details = (await api.get("/calls/api-1")).json()
    assert details["from_number"] == "+15550000001" and details["state"] == "initiated"
    assert details["counts"] == {
        "segments": 2,
        "segments_inbound": 1,
        "segments_outbound": 1,
        "partials": 0,
    }
    for path in (
        "/calls/nope",
        "/calls/nope/transcript",
        "/calls/nope/transcript?format=srt",
        "/calls/nope/transcript/live",
    ):
        response = await api.get(path)
        assert response.status_code == 404 and response.json() == {"error": "no call nope"}, path


async def test_transcript_formats(api: httpx.AsyncClient) -> None:
    document = (await api.get("/calls/api-1/transcript")).json()
    assert [s["text"] for s in document["segments"]] == [
        "call 1 is about billing",
        "thanks for waiting",
    ]
    txt = await api.get("/calls/api-1/transcript", params={"format": "txt"})
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    assert txt.text == "inbound: call 1 is about billing\noutbound: thanks for waiting\n"
    vtt = await api.get("/calls/api-1/transcript", params={"format": "vtt"})
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    assert vtt.text.startswith(
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.000\n<v inbound>call 1 is about billing\n"
    )
    srt = await api.get("/calls/api-1/transcript", params={"format": "srt"})
    assert srt.text.startswith(
        "1\n00:00:01,000 --> 00:00:03,000\ninbound: call 1 is about billing\n\n2\n"
    )
    bad = await api.get("/calls/api-1/transcript", params={"format": "doc"})
    assert bad.status_code == 400 and "json, txt, vtt, srt" in bad.json()["error"]


async def test_search_ranks_highlights_and_pages(api: httpx.AsyncClient) -> None:
    first = (await api.get("/search", params={"q": "about -router", "limit": 1})).json()
    assert (
        first["next_offset"] == 1 and first["items"][0]["snippet"].count("<mark>about</mark>") == 1
    )
    second = (
        await api.get("/search", params={"q": "about -router", "limit": 1, "offset": 1})
    ).json()
    assert second["next_offset"] is None
    assert {first["items"][0]["call_control_id"], second["items"][0]["call_control_id"]} == {
        "api-1",
        "api-3",
    }
    phrase = (await api.get("/search", params={"q": '"broken router" OR billi*'})).json()["items"]
    assert len(phrase) == 5 and all("<mark>" in hit["snippet"] for hit in phrase)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/search", {"q": '"broken'}, 'no closing "'),
        ("/search", {"q": "router OR"}, "OR needs a term on both sides"),
        ("/search", {"q": "-router"}, "not excluded"),
        ("/search", {}, "q is required"),
        ("/search", {"q": "x", "limit": "0"}, "limit must be between 1 and 200"),
        ("/calls", {"since": "yesterday"}, "since must be an ISO 8601 time"),
        ("/calls", {"offset": "x"}, "offset must be an integer"),
        ("/calls", {"q": "(billing"}, "no matching )"),
    ],
)
async def test_bad_requests_answer_400_with_the_reason(
    bare_api: httpx.AsyncClient, path: str, params: dict[str, str], message: str
) -> None:
    response = await bare_api.get(path, params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_the_token_is_required_when_set(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, indexer_api_token="s3cret"
    )
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
            response = await client.get("/calls", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert (
            await client.get("/calls", headers={"authorization": "Bearer s3cret"})
        ).status_code == 200
        assert (await client.get("/search", params={"q": "x"})).status_code == 401
        assert (await client.get("/healthz")).status_code == 200  # probes need no token
        assert (await client.get("/readyz")).json() == {
            "ready": True,
            "checks": {"database": True, "redis": True},
        }
        assert "voicetap_consumer_entries_total" in (await client.get("/metrics")).text


async def _events_with_ids(response: httpx.Response) -> AsyncIterator[tuple[str | None, str, str]]:
    """(id, event, data) of an event stream; id None when the event carries none."""
    event_id: str | None = None
    event = data = ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            yield event_id, event, data
            event_id, event, data = None, "", ""


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of an event stream, keep-alive comments skipped."""
    async for _, event, data in _events_with_ids(response):
        yield event, data


async def test_live_transcript_streams_what_any_indexer_stores(
    redis: Redis, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    database = database_url
    reader = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="reader")
    other = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="other")
    call = "live-1"
    await publish(
        redis,
        initiated(call),
        transcription(call, "first words", 2.0),
        transcription(call, "and mo", 3.0, final=False),
    )
    async with (
        running_indexer(reader) as url,
        running_indexer(other) as other_url,
        httpx.AsyncClient(base_url=url, timeout=10) as api,
    ):

        async def stored() -> bool:
            return (await api.get(f"/calls/{call}")).json().get("counts", {}).get("partials") == 1

        await eventually(stored, message="snapshot stored")
        async with api.stream("GET", f"/calls/{call}/transcript/live") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response)
            assert [await anext(events) for _ in range(2)] == [
                ("segment", await _json_of(api, call, 0)),
                ("partial", (await _partial_json(api, call))),
            ]
            received: list[tuple[str, str]] = []
            for n in range(10):  # stored by either process
                await publish(redis, transcription(call, f"more words {n}", 4.0 + n))
                received.append(await asyncio.wait_for(anext(events), 5))
            await publish(redis, hangup(call, 20.0))
            received.append(await asyncio.wait_for(anext(events), 5))
            assert [kind for kind, _ in received] == ["segment"] * 10 + ["completed"]
            assert [f"more words {n}" in data for n, (_, data) in enumerate(received[:10])] == [
                True
            ] * 10
        for base in (url, other_url):  # each process stored some of them
            metrics = (await api.get(f"{base}/metrics")).text
            stored_here = [
                line
                for line in metrics.splitlines()
                if line.startswith('voicetap_indexer_rows_stored_total{kind="segment"}')
            ]
            assert float(stored_here[0].split()[-1]) > 0, base


async def _json_of(api: httpx.AsyncClient, call: str, index: int) -> str:
    import orjson

    return orjson.dumps(
        (await api.get(f"/calls/{call}/transcript")).json()["segments"][index]
    ).decode()


async def _partial_json(api: httpx.AsyncClient, call: str) -> str:
    import orjson

    return orjson.dumps((await api.get(f"/calls/{call}/transcript")).json()["partials"][0]).decode()


async def test_a_reconnecting_client_resumes_after_its_last_event_id(
    redis: Redis, settings: IndexerSettings
) -> None:
    """What an EventSource does after a dropped connection: it sends the last id it saw and gets
    exactly what it missed, no snapshot again and nothing twice."""
    call = "resume-1"
    await publish(
        redis,
        initiated(call),
        transcription(call, "hello there", 1.0),
        transcription(call, "how can I help", 2.0, track="outbound"),
    )
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url, timeout=10) as api:

        async def stored() -> bool:
            return (await api.get(f"/calls/{call}")).json().get("counts", {}).get("segments") == 2

        await eventually(stored, message="snapshot stored")
        async with api.stream("GET", f"/calls/{call}/transcript/live") as response:
            events = _events_with_ids(response)
            snapshot = [await anext(events) for _ in range(2)]
            # only the snapshot's last event carries an id: cut off before it, a client starts over
            assert [(event_id is None, kind) for event_id, kind, _ in snapshot] == [
                (True, "segment"),
                (False, "segment"),
            ]
            await publish(redis, transcription(call, "my router is broken", 3.0))
            last_id, kind, data = await asyncio.wait_for(anext(events), 5)
            assert kind == "segment" and "my router is broken" in data and last_id is not None
        # disconnected: two more segments are stored meanwhile
        await publish(
            redis,
            transcription(call, "have you tried", 4.0, track="outbound"),
            transcription(call, "turning it off", 5.0, track="outbound"),
        )
        await eventually(lambda: _segments(api, call, 5), message="missed segments stored")
        async with api.stream(
            "GET", f"/calls/{call}/transcript/live", headers={"last-event-id": last_id}
        ) as response:
            events = _events_with_ids(response)
            missed = [await asyncio.wait_for(anext(events), 5) for _ in range(2)]
            # in the order they were stored (two consumers may store them either way round)
            assert sorted(
                (kind, "have you tried" in data, "turning it off" in data)
                for _, kind, data in missed
            ) == [
                ("segment", False, True),
                ("segment", True, False),
            ]
            assert all(event_id is not None for event_id, _, _ in missed)
            await publish(redis, hangup(call, 9.0))
            assert (await asyncio.wait_for(anext(events), 5))[1] == "completed"
        # a garbage Last-Event-ID is ignored: the client gets the full snapshot (now completed)
        async with api.stream(
            "GET", f"/calls/{call}/transcript/live", headers={"last-event-id": "not-an-id"}
        ) as response:
            kinds = [kind async for _, kind, _ in _events_with_ids(response)]
            assert kinds == ["segment"] * 5 + ["completed"]


async def _segments(api: httpx.AsyncClient, call: str, count: int) -> bool:
    return (await api.get(f"/calls/{call}")).json()["counts"]["segments"] == count
