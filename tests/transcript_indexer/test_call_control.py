"""Auto-transcription against the fake Telnyx API, through the real SDK: once per answered call across
two indexer processes, and retried (never remembered) through transient API failures."""

import asyncio
from pathlib import Path
from typing import Literal

import orjson
import pytest
from redis.asyncio import Redis
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState
from tests.conftest import API_KEY as FAKE_API_KEY
from tests.conftest import Fake, _Swappable
from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import answered, publish
from transcript_indexer.control import transcription_key
from voicetap_sdk.topics import CALL_ANSWERED, COMMAND_RESULTS, dlq_topic

API_KEY = "KEYindexer_test"


async def test_transcription_starts_once_per_answered_call(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    state = FakeTelnyxState(API_KEY)
    live = state.create_call(call_control_id="v3:live-call")
    ended = state.create_call(call_control_id="v3:ended-call")
    state.end_call(ended.call_control_id)
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    async with serve(create_fake_api(state)) as fake_url:
        common = {
            "indexer_auto_transcribe": True,
            "telnyx_api_key": API_KEY,
            "telnyx_base_url": f"{fake_url}/v2",
            "indexer_transcription_engine": "B",
            "indexer_transcription_tracks": "inbound",
        }
        first = indexer_settings(
            redis_url, database, tmp_path, indexer_consumer_name="one", **common
        )
        second = indexer_settings(
            redis_url, database, tmp_path, indexer_consumer_name="two", **common
        )
        async with running_indexer(first), running_indexer(second):
            live_answer = answered(live.call_control_id)
            await publish(
                redis,
                live_answer,
                live_answer,  # re-delivered
                answered(ended.call_control_id),  # the caller hung up before we got to it
                answered("v3:unknown-call"),  # a call Telnyx does not know
            )

            async def all_tried() -> bool:
                return (
                    len(state.requests_for(action="transcription_start")) >= 3
                    and await redis.xlen(COMMAND_RESULTS) >= 3
                )

            await eventually(all_tried, message="three commands sent")
            await asyncio.sleep(0.5)  # room for a doubled command to show up
            await publish(
                redis, answered(live.call_control_id)
            )  # even a second answered event changes nothing
            await asyncio.sleep(0.5)

    started = state.requests_for(live.call_control_id, "transcription_start")
    assert len(started) == 1 and started[0].status == 200
    assert started[0].body == {
        "transcription_engine": "B",
        "transcription_tracks": "inbound",
        "command_id": f"voicetap:transcription_start:auto:{live_answer['data']['id']}",  # type: ignore[index]
    }
    assert state.call(live.call_control_id).transcription is not None
    assert [r.status for r in state.requests_for(ended.call_control_id, "transcription_start")] == [
        422
    ]
    results = {
        r["call_control_id"]: r
        for r in (orjson.loads(f[b"event"]) for _, f in await redis.xrange(COMMAND_RESULTS))
    }
    assert len(results) == 3  # one outcome per call, however often it was answered
    assert results[live.call_control_id]["ok"] is True
    assert (
        results[ended.call_control_id]["error"] == "call_ended"
    )  # logged at info: not an error for voicetap
    unknown = results["v3:unknown-call"]
    assert (unknown["error"], unknown["telnyx_errors"][0]["code"]) == ("unknown_call", "10005")


Transient = Literal["rate_limited", "telnyx_error", "network"]
CLIENT_TIMEOUT_SECONDS = 0.3


class ApiOutage:
    """The fake API having a bad time: while on, every Call Control request fails the ``kind`` way.

    ``rate_limited`` is the fake's own 429 (a rate limit of 0); ``telnyx_error`` answers 503 and
    ``network`` answers nothing before the client gives up, both in front of the fake (which never
    sees those requests)."""

    def __init__(self, fake: Fake, app: ASGIApp, kind: Transient) -> None:
        self._fake = fake
        self._app = app
        self._kind = kind
        self._on = False
        self._refused = 0

    def begin(self) -> None:
        self._on = True
        if self._kind == "rate_limited":
            self._fake.state.rate_limit, self._fake.state.retry_after = 0, 0.05

    def end(self) -> None:
        self._on = False
        self._fake.state.rate_limit = None

    def failures(self) -> int:
        return self._refused + sum(r.status == 429 for r in self._fake.state.requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._on
            and self._kind != "rate_limited"
            and scope["type"] == "http"
            and "/actions/" in scope["path"]
        ):
            self._refused += 1
            if self._kind == "network":
                await asyncio.sleep(3 * CLIENT_TIMEOUT_SECONDS)  # the client has timed out by then
            response = JSONResponse(
                {"errors": [{"code": "10001", "title": "Service unavailable"}]}, status_code=503
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


@pytest.mark.parametrize("kind", ["rate_limited", "telnyx_error", "network"])
async def test_a_transient_failure_is_retried_and_transcription_starts_once_the_api_recovers(
    kind: Transient,
    redis: Redis,
    redis_url: str,
    fake: Fake,
    fake_server: tuple[_Swappable, str],
    tmp_path: Path,
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    swappable, _ = fake_server
    assert swappable.app is not None
    outage = swappable.app = ApiOutage(fake, swappable.app, kind)
    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        indexer_auto_transcribe=True,
        telnyx_api_key=FAKE_API_KEY,
        telnyx_base_url=f"{fake.url}/v2",
        telnyx_max_retries=0,  # the SDK's own retries would only make the test slower: the group retries
        telnyx_timeout_seconds=CLIENT_TIMEOUT_SECONDS,
        indexer_claim_idle_ms=500,
    )
    key = transcription_key(call.call_control_id)
    async with running_indexer(settings):
        outage.begin()
        await publish(redis, answered(call.call_control_id))

        async def redelivered() -> (
            bool
        ):  # the first delivery failed, and so did its redelivery after the claim bound
            return outage.failures() >= 2

        await eventually(redelivered, message="the answered event delivered again")
        assert (
            await redis.xlen(COMMAND_RESULTS) == 0
        )  # no outcome yet: none published, none remembered
        assert await redis.get(key) in (None, b"pending")
        outage.end()

        async def started() -> bool:
            return (
                fake.state.call(call.call_control_id).transcription is not None
                and await redis.xlen(COMMAND_RESULTS) == 1
                and (await redis.xpending(CALL_ANSWERED, "transcript_indexer"))["pending"] == 0
            )

        await eventually(started, message="transcription started once the API recovered")
    accepted = [
        r
        for r in fake.state.requests_for(call.call_control_id, "transcription_start")
        if r.status == 200
    ]
    assert len(accepted) == 1 and not accepted[0].duplicate
    [(_, fields)] = await redis.xrange(COMMAND_RESULTS)
    result = orjson.loads(fields[b"event"])
    assert result["ok"] is True and result["command_id"] == accepted[0].body[
        "command_id"
    ].removeprefix("voicetap:transcription_start:")
    assert await redis.get(key) == b"started"
    assert await redis.xlen(dlq_topic(CALL_ANSWERED)) == 0
