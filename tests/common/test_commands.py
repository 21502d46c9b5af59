"""Command contracts and their execution through the real SDK against the fake Telnyx API."""

import typing
from typing import get_type_hints

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from redis.asyncio import Redis

from telnyx_simulator.state import FakeTelnyxState
from tests.conftest import API_KEY, Fake
from voicetap_common import codec, commands
from voicetap_common.call_control import TelnyxApiSettings, send, telnyx_client
from voicetap_common.command_runner import CommandRunner
from voicetap_common.consumer import ConsumerMetrics, ConsumerOptions, StreamConsumer
from voicetap_common.streams import Producer

KEY = API_KEY


def _literal_values(annotation: typing.Any) -> set[typing.Any]:
    values: set[typing.Any] = set()
    for arg in typing.get_args(annotation) or ():
        values |= _literal_values(arg)
    if typing.get_origin(annotation) is typing.Literal:
        values |= set(typing.get_args(annotation))
    return values


@pytest.mark.parametrize(
    ("model", "sdk_params"),
    [
        (commands.ForkStart, "telnyx.types.calls.action_start_forking_params.ActionStartForkingParams"),
        (commands.ForkStop, "telnyx.types.calls.action_stop_forking_params.ActionStopForkingParams"),
        (commands.StreamingStart, "telnyx.types.calls.action_start_streaming_params.ActionStartStreamingParams"),
        (commands.StreamingStop, "telnyx.types.calls.action_stop_streaming_params.ActionStopStreamingParams"),
        (commands.TranscriptionStart, "telnyx.types.calls.action_start_transcription_params.ActionStartTranscriptionParams"),
        (commands.TranscriptionStop, "telnyx.types.calls.action_stop_transcription_params.ActionStopTranscriptionParams"),
    ],
)
def test_every_option_and_enum_matches_the_sdk(model: type, sdk_params: str) -> None:
    module_name, _, class_name = sdk_params.rpartition(".")
    params = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    sdk_hints = get_type_hints(params)
    ours = {name for name in model.model_fields if name not in {"id", "action", "call_control_id", "correlation_id"}}
    assert ours <= set(sdk_hints), f"options the SDK does not take: {ours - set(sdk_hints)}"
    for name in ours:
        sdk_values = _literal_values(sdk_hints[name])
        if sdk_values:
            assert _literal_values(model.model_fields[name].annotation) == sdk_values, name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "fork_start", "call_control_id": "c", "rx": "udp:1.2.3.4:40000"}, "both rx and tx"),
        ({"action": "fork_start", "call_control_id": "c", "rx": "1.2.3.4:1", "tx": "udp:1.2.3.4:2"}, "udp:HOST:PORT"),
        ({"action": "streaming_start", "call_control_id": "c", "stream_codec": "MP3"}, "stream_codec"),
        ({"action": "streaming_start", "call_control_id": "c", "stream_url": "http://x"}, "stream_url"),
        ({"action": "transcription_start", "call_control_id": "c", "engine": "B"}, "Extra inputs"),
        ({"action": "record_start", "call_control_id": "c"}, "action"),
        ({"action": "fork_stop"}, "call_control_id"),
    ],
)
def test_invalid_commands_are_refused_before_sending(body: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=message):
        commands.parse_command(codec.dumps(body))


@pytest.fixture
def fake_api(fake: Fake) -> tuple[FakeTelnyxState, str]:
    return fake.state, fake.url + "/v2"


def runner_settings(url: str, key: str = KEY) -> TelnyxApiSettings:
    return TelnyxApiSettings(telnyx_api_key=key, telnyx_base_url=url, telnyx_max_retries=0)


async def run_commands(redis: Redis, settings: TelnyxApiSettings, bodies: list[bytes], name: str = "w1", rounds: int = 3) -> None:
    client = telnyx_client(settings)
    producer = Producer(redis, 10_000)

    async def execute(command: commands._Command) -> dict | None:  # type: ignore[type-arg]
        await send(client, command)
        return None

    runner = CommandRunner(redis, producer, execute, executed_by=name, actions=frozenset(commands.COMMAND_MODELS))
    options = ConsumerOptions(group="executors", topics=[commands.TRANSCRIPTION_COMMANDS], consumer=name, block_ms=50, claim_interval_s=0)
    consumer = StreamConsumer(redis, producer, options, runner.handle, ConsumerMetrics(CollectorRegistry()))
    for i, body in enumerate(bodies):
        await producer.publish(commands.TRANSCRIPTION_COMMANDS, f"c{i}", "command", body)
    await consumer.ensure_groups()
    for _ in range(rounds):
        await consumer.run_once()
    await client.close()


async def results(redis: Redis) -> list[dict]:  # type: ignore[type-arg]
    return [codec.loads(fields[b"event"]) for _, fields in await redis.xrange(commands.COMMAND_RESULTS)]


async def test_a_command_is_sent_once_with_its_derived_command_id(redis: Redis, fake_api: tuple[FakeTelnyxState, str]) -> None:
    state, url = fake_api
    call = state.create_call()
    state.answer_call(call.call_control_id)
    command = commands.TranscriptionStart(call_control_id=call.call_control_id, transcription_engine="B", correlation_id="agent-7")
    body = codec.dumps(command.model_dump(mode="json"))
    await run_commands(redis, runner_settings(url), [body, body])  # delivered twice
    sent = state.requests_for(call.call_control_id, "transcription_start")
    assert len(sent) == 1
    assert sent[0].body["command_id"] == f"voicetap:transcription_start:{command.id}"
    assert sent[0].body["transcription_engine"] == "B"
    assert sent[0].headers["authorization"] == f"Bearer {KEY}"
    [result] = await results(redis)
    assert result["ok"] is True and result["correlation_id"] == "agent-7" and result["command_id"] == command.id


@pytest.mark.parametrize(
    ("setup", "key", "kind"),
    [
        ("unknown", KEY, "unknown_call"),
        ("ended", KEY, "call_ended"),
        ("answered", "KEY_wrong", "bad_key"),
    ],
)
async def test_telnyx_errors_are_named_on_the_result(
    redis: Redis, fake_api: tuple[FakeTelnyxState, str], setup: str, key: str, kind: str
) -> None:
    state, url = fake_api
    call = state.create_call()
    state.answer_call(call.call_control_id)
    if setup == "ended":
        state.end_call(call.call_control_id)
    call_id = "v3:does-not-exist" if setup == "unknown" else call.call_control_id
    body = codec.dumps(commands.TranscriptionStop(call_control_id=call_id).model_dump(mode="json"))
    await run_commands(redis, runner_settings(url, key), [body])
    [result] = await results(redis)
    assert result["ok"] is False
    assert result["error"] == kind, result
    assert result["detail"]


async def test_network_failure_is_named(redis: Redis) -> None:
    from voicetap_cli.embedded_redis import free_port

    body = codec.dumps(commands.TranscriptionStop(call_control_id="v3:x").model_dump(mode="json"))
    await run_commands(redis, runner_settings(f"http://127.0.0.1:{free_port()}/v2"), [body])
    [result] = await results(redis)
    assert result["error"] == "network"


async def test_a_malformed_command_is_answered_and_dead_lettered_and_the_next_runs(
    redis: Redis, fake_api: tuple[FakeTelnyxState, str]
) -> None:
    state, url = fake_api
    call = state.create_call()
    state.answer_call(call.call_control_id)
    good = commands.TranscriptionStop(call_control_id=call.call_control_id)
    bad = codec.dumps({"id": "bad-1", "action": "transcription_start", "call_control_id": call.call_control_id, "transcription_engine": "Nope"})
    await run_commands(redis, runner_settings(url), [bad, codec.dumps(good.model_dump(mode="json"))])
    by_id = {r["command_id"]: r for r in await results(redis)}
    assert by_id["bad-1"]["error"] == "malformed" and "transcription_engine" in by_id["bad-1"]["detail"]
    assert by_id[good.id]["ok"] is True
    dead = await redis.xrange(commands.TRANSCRIPTION_COMMANDS + ".dlq")
    assert [f[b"id"] for _, f in dead] == [b"c0"]

