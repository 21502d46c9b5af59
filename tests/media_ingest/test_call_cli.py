"""Media commands from the command line: `voicetap call` → media_ingest → the fake API → the outcome printed."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.conftest import Fake
from tests.media_ingest.harness import ingest_settings, running

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


async def voicetap_call(redis_url: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "call", *args, "--timeout", "20",
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    printed = out.decode()
    assert "{" in printed, printed
    return process.returncode or 0, json.loads(printed[printed.index("{"):])


async def test_each_media_action_from_the_command_line(redis: Redis, redis_url: str, fake: Fake, tmp_path: Path) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        code, started = await voicetap_call(redis_url, "fork_start", call.call_control_id, "--correlation-id", "cli-1")
        assert code == 0 and started["ok"] and started["correlation_id"] == "cli-1"
        rx, tx = started["allocated"]["rx"], started["allocated"]["tx"]
        [request] = fake.state.requests_for(call.call_control_id, "fork_start")
        assert request.body == {"rx": rx, "tx": tx, "stream_type": "decrypted", "command_id": started["telnyx_command_id"]}

        code, stopped = await voicetap_call(redis_url, "fork_stop", call.call_control_id)
        assert code == 0 and stopped["ok"]

        code, streaming = await voicetap_call(redis_url, "streaming_start", call.call_control_id, "--stream-track", "both_tracks")
        assert code == 0 and streaming["ok"]
        [request] = fake.state.requests_for(call.call_control_id, "streaming_start")
        assert request.body["stream_url"].endswith("/streams/telnyx") and request.body["stream_track"] == "both_tracks"
        assert request.body["stream_auth_token"] and request.body["stream_auth_token"] not in json.dumps(streaming)

        code, _ = await voicetap_call(redis_url, "streaming_stop", call.call_control_id)
        assert code == 0
        assert [r.action for r in fake.state.requests_for(call.call_control_id)] == [
            "fork_start", "fork_stop", "streaming_start", "streaming_stop",
        ]

        fake.state.end_call(call.call_control_id)
        code, ended = await voicetap_call(redis_url, "fork_start", call.call_control_id)
        assert code == 1 and ended["error"] == "call_ended"


async def test_an_invalid_option_is_refused_before_anything_is_sent(redis: Redis, redis_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "call", "fork_start", "v3:x", "--rx", "10.0.0.1:4000", "--tx", "udp:10.0.0.1:4001",
        env={**os.environ, "REDIS_URL": redis_url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 1 and "udp:HOST:PORT" in out.decode()
    assert await redis.exists("voicetap.command.media") == 0
