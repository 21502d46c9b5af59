"""Auto-transcription against the fake Telnyx API, through the real SDK, with two indexer processes."""

import asyncio
from pathlib import Path

import orjson
from redis.asyncio import Redis

from telnyx_simulator.fake_api import create_fake_api
from telnyx_simulator.serve import serve
from telnyx_simulator.state import FakeTelnyxState
from tests.transcript_indexer.harness import eventually, indexer_settings, running_indexer
from tests.transcript_indexer.indexer_events import answered, publish
from voicetap_common.commands import COMMAND_RESULTS

API_KEY = "KEYindexer_test"


async def test_transcription_starts_once_per_answered_call(redis: Redis, redis_url: str, tmp_path: Path) -> None:
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
        first = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="one", **common)
        second = indexer_settings(redis_url, database, tmp_path, indexer_consumer_name="two", **common)
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
                return len(state.requests_for(action="transcription_start")) >= 3 and await redis.xlen(COMMAND_RESULTS) >= 3

            await eventually(all_tried, message="three commands sent")
            await asyncio.sleep(0.5)  # room for a doubled command to show up
            await publish(redis, answered(live.call_control_id))  # even a second answered event changes nothing
            await asyncio.sleep(0.5)

    started = state.requests_for(live.call_control_id, "transcription_start")
    assert len(started) == 1 and started[0].status == 200
    assert started[0].body == {
        "transcription_engine": "B",
        "transcription_tracks": "inbound",
        "command_id": f"voicetap:transcription_start:auto:{live_answer['data']['id']}",  # type: ignore[index]
    }
    assert state.call(live.call_control_id).transcription is not None
    assert [r.status for r in state.requests_for(ended.call_control_id, "transcription_start")] == [422]
    results = {r["call_control_id"]: r for r in (orjson.loads(f[b"event"]) for _, f in await redis.xrange(COMMAND_RESULTS))}
    assert len(results) == 3  # one outcome per call, however often it was answered
    assert results[live.call_control_id]["ok"] is True
    assert results[ended.call_control_id]["error"] == "call_ended"  # logged at info: not an error for voicetap
    unknown = results["v3:unknown-call"]
    assert (unknown["error"], unknown["telnyx_errors"][0]["code"]) == ("unknown_call", "10005")
