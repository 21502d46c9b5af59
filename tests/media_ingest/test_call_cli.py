"""Media commands from the command line: `voicetap call` → media_ingest → the fake API → the outcome printed."""

import asyncio
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import Fake
from tests.media_ingest.harness import ingest_settings, running
from voicetap_cli.call import build_command
from voicetap_cli.main import build_parser, main
from voicetap_sdk.commands import COMMAND_MODELS, StreamingStart

pytestmark = pytest.mark.slow  # real-time media: `pytest -m 'not slow'` skips it

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


async def voicetap_call(redis_url: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
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
    printed = out.decode()
    assert "{" in printed, printed
    return process.returncode or 0, json.loads(printed[printed.index("{") :])


async def test_each_media_action_from_the_command_line(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    async with running(ingest_settings(tmp_path, redis_url, fake.url)):
        code, started = await voicetap_call(
            redis_url, "fork_start", call.call_control_id, "--correlation-id", "cli-1"
        )
        assert code == 0 and started["ok"] and started["correlation_id"] == "cli-1"
        rx, tx = started["allocated"]["rx"], started["allocated"]["tx"]
        [request] = fake.state.requests_for(call.call_control_id, "fork_start")
        assert request.body == {
            "rx": rx,
            "tx": tx,
            "stream_type": "decrypted",
            "command_id": started["telnyx_command_id"],
        }

        code, stopped = await voicetap_call(redis_url, "fork_stop", call.call_control_id)
        assert code == 0 and stopped["ok"]

        code, streaming = await voicetap_call(
            redis_url, "streaming_start", call.call_control_id, "--stream-track", "both_tracks"
        )
        assert code == 0 and streaming["ok"]
        [request] = fake.state.requests_for(call.call_control_id, "streaming_start")
        assert (
            request.body["stream_url"].endswith("/streams/telnyx")
            and request.body["stream_track"] == "both_tracks"
        )
        assert request.body["stream_auth_token"] and request.body[
            "stream_auth_token"
        ] not in json.dumps(streaming)

        code, _ = await voicetap_call(redis_url, "streaming_stop", call.call_control_id)
        assert code == 0
        assert [r.action for r in fake.state.requests_for(call.call_control_id)] == [
            "fork_start",
            "fork_stop",
            "streaming_start",
            "streaming_stop",
        ]

        fake.state.end_call(call.call_control_id)
        code, ended = await voicetap_call(redis_url, "fork_start", call.call_control_id)
        assert code == 1 and ended["error"] == "call_ended"


async def test_an_invalid_option_is_refused_before_anything_is_sent(
    redis: Redis, redis_url: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        VOICETAP,
        "call",
        "fork_start",
        "v3:x",
        "--rx",
        "10.0.0.1:4000",
        "--tx",
        "udp:10.0.0.1:4001",
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 2 and "udp:HOST:PORT" in out.decode()
    assert await redis.exists("voicetap.command.media") == 0


def _literal_values(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [value for arg in typing.get_args(annotation) for value in _literal_values(arg)]


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_call_help_lists_every_action_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "call", "--help")
    for action, model in COMMAND_MODELS.items():
        assert f"\n  {action} CALL_CONTROL_ID\n" in text, action
        section = text.split(f"\n  {action} CALL_CONTROL_ID\n", 1)[1].split("\n\n", 1)[0]
        listed = re.findall(r"^\s+(--[a-z-]+)", section, re.MULTILINE)
        expected = []
        for name, field in model.model_fields.items():
            values = _literal_values(field.annotation)
            if name in {"id", "action", "call_control_id"} or len(values) == 1:
                continue  # not options: voicetap's own, or a value there is nothing to choose for
            flag = "--" + name.replace("_", "-")
            expected.append(flag)
            [line] = [line for line in section.splitlines() if line.strip().startswith(flag + " ")]
            assert all(str(value) in line for value in values), line
        assert listed == expected, action
        action_help = _help(
            capsys, "call", action, "--help"
        )  # the action itself takes what is listed
        assert all(flag in action_help for flag in listed), action
    assert "--timeout SECONDS" in text and "--no-wait" in text


def test_object_and_boolean_options_from_the_command_line() -> None:
    args = build_parser().parse_args(
        [
            "call",
            "streaming_start",
            "v3:x",
            "--enable-dialogflow",
            "--dialogflow-config",
            '{"analyze_sentiment": true}',
            "--custom-parameters",
            '[{"name": "agent", "value": "7"}]',
        ]
    )
    command = StreamingStart.model_validate(build_command(args))
    assert command.enable_dialogflow is True
    assert (
        command.dialogflow_config is not None
        and command.dialogflow_config.analyze_sentiment is True
    )
    assert command.sdk_arguments()["custom_parameters"] == [{"name": "agent", "value": "7"}]
    args = build_parser().parse_args(["call", "streaming_start", "v3:x", "--no-enable-dialogflow"])
    assert build_command(args)["enable_dialogflow"] is False
