"""Transcription commands on demand: `voicetap call` → the indexer's group → the fake API → the result topic."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.conftest import API_KEY, Fake
from tests.transcript_indexer.harness import indexer_settings, running_indexer
from voicetap_sdk import codec
from voicetap_sdk.commands import TranscriptionStart
from voicetap_sdk.topics import COMMAND_RESULTS, TRANSCRIPTION_COMMANDS

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


async def voicetap_call(redis_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        VOICETAP,
        "call",
        *args,
        "--timeout",
        "20",
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def outcome(printed: str) -> dict:  # type: ignore[type-arg]
    return json.loads(printed[printed.index("{") :])


async def test_transcription_start_and_stop_from_the_command_line(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        telnyx_api_key=API_KEY,
        telnyx_base_url=f"{fake.url}/v2",
    )
    async with running_indexer(settings):
        code, printed = await voicetap_call(
            redis_url,
            "transcription_start",
            call.call_control_id,
            "--transcription-engine",
            "Deepgram",
            "--transcription-tracks",
            "both",
            "--correlation-id",
            "agent-joined",
        )
        assert code == 0, printed
        started = outcome(printed)
        assert started["ok"] is True and started["correlation_id"] == "agent-joined"
        [request] = fake.state.requests_for(call.call_control_id, "transcription_start")
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body == {
            "transcription_engine": "Deepgram",
            "transcription_tracks": "both",
            "command_id": f"voicetap:transcription_start:{started['command_id']}",
        }
        code, printed = await voicetap_call(redis_url, "transcription_stop", call.call_control_id)
        assert code == 0, printed
        assert len(fake.state.requests_for(call.call_control_id, "transcription_stop")) == 1

        code, printed = await voicetap_call(redis_url, "transcription_stop", "v3:no-such-call")
        assert code == 1 and outcome(printed)["error"] == "unknown_call"


async def test_a_command_delivered_twice_runs_once_and_a_malformed_one_does_not_stop_the_next(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    command = TranscriptionStart(call_control_id=call.call_control_id, transcription_engine="B")
    body = codec.dumps(command.model_dump(mode="json"))
    for _ in range(2):
        await redis.xadd(
            TRANSCRIPTION_COMMANDS, {"id": command.id, "type": command.action, "event": body}
        )
    await redis.xadd(
        TRANSCRIPTION_COMMANDS,
        {"id": "bad", "type": "x", "event": b'{"action": "transcription_start"}'},
    )
    after = TranscriptionStart(call_control_id=call.call_control_id, transcription_engine="A")
    await redis.xadd(
        TRANSCRIPTION_COMMANDS,
        {"id": after.id, "type": after.action, "event": codec.dumps(after.model_dump(mode="json"))},
    )
    settings = indexer_settings(
        redis_url,
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        telnyx_api_key=API_KEY,
        telnyx_base_url=f"{fake.url}/v2",
        indexer_consumer_name="one",
    )
    second = settings.model_copy(
        update={"indexer_consumer_name": "two", "indexer_port": settings.indexer_port + 1}
    )
    async with running_indexer(settings), running_indexer(second):
        for _ in range(200):
            if await redis.xlen(COMMAND_RESULTS) >= 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    results = [codec.loads(f[b"event"]) for _, f in await redis.xrange(COMMAND_RESULTS)]
    by_command = {r["command_id"]: r for r in results}
    assert len(results) == 3
    assert by_command[command.id]["ok"] and by_command[after.id]["ok"]
    assert (
        by_command["bad"]["error"] == "malformed"
        and "call_control_id" in by_command["bad"]["detail"]
    )
    assert [
        r.body["transcription_engine"]
        for r in fake.state.requests_for(call.call_control_id, "transcription_start")
    ] == ["B", "A"]
    assert [f[b"id"] for _, f in await redis.xrange(TRANSCRIPTION_COMMANDS + ".dlq")] == [b"bad"]
