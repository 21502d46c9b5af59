"""Command contracts and their execution through the real SDK against the fake Telnyx API."""

import typing
from typing import get_type_hints

import pytest
import telnyx
import typing_extensions
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from telnyx_simulator.state import FakeTelnyxState
from tests.conftest import API_KEY, Fake, FakeFactory
from voicetap_common.call_control import TelnyxApiSettings, send, telnyx_client
from voicetap_common.command_runner import CommandRunner
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk import codec, commands, topics
from voicetap_sdk.consumer import ConsumerOptions, StreamConsumer
from voicetap_sdk.streams import Producer

KEY = API_KEY


# SDK parameters that are deliberately not options of a command. Every other parameter the SDK
# takes must be an option, and every option a parameter the SDK takes.
NOT_OPTIONS = {
    "command_id",  # derived from the command's own id (telnyx_command_id), so Telnyx de-duplicates a resend
}
VOICETAP_FIELDS = {
    "id",
    "action",
    "call_control_id",
    "correlation_id",
}  # ours: never sent to Telnyx


def _literal_values(annotation: typing.Any) -> set[typing.Any]:
    values: set[typing.Any] = set()
    for arg in typing.get_args(annotation) or ():
        values |= _literal_values(arg)
    if typing.get_origin(annotation) is typing.Literal:
        values |= set(typing.get_args(annotation))
    return values


def _nested(
    annotation: typing.Any, is_nested: typing.Callable[[typing.Any], bool]
) -> typing.Any | None:
    """The nested object type inside ``X | None``, ``list[X]`` or ``Iterable[X]``, if any."""
    if is_nested(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _nested(arg, is_nested)) is not None:
            return found
    return None


def _our_model(annotation: typing.Any) -> type[BaseModel] | None:
    return _nested(annotation, lambda a: isinstance(a, type) and issubclass(a, BaseModel))


@pytest.mark.parametrize(
    ("model", "sdk_params"),
    [
        (
            commands.ForkStart,
            "telnyx.types.calls.action_start_forking_params.ActionStartForkingParams",
        ),
        (
            commands.ForkStop,
            "telnyx.types.calls.action_stop_forking_params.ActionStopForkingParams",
        ),
        (
            commands.StreamingStart,
            "telnyx.types.calls.action_start_streaming_params.ActionStartStreamingParams",
        ),
        (
            commands.StreamingStop,
            "telnyx.types.calls.action_stop_streaming_params.ActionStopStreamingParams",
        ),
        (
            commands.TranscriptionStart,
            "telnyx.types.calls.action_start_transcription_params.ActionStartTranscriptionParams",
        ),
        (
            commands.TranscriptionStop,
            "telnyx.types.calls.action_stop_transcription_params.ActionStopTranscriptionParams",
        ),
    ],
)
def test_every_option_and_enum_matches_the_sdk(model: type[BaseModel], sdk_params: str) -> None:
    module_name, _, class_name = sdk_params.rpartition(".")
    params = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    sdk_hints = get_type_hints(params)
    ours = set(model.model_fields) - VOICETAP_FIELDS
    assert ours <= set(sdk_hints), f"options the SDK does not take: {ours - set(sdk_hints)}"
    missing = set(sdk_hints) - ours - NOT_OPTIONS
    assert not missing, f"SDK parameters that are neither options nor excluded: {missing}"
    assert not ours & NOT_OPTIONS, (
        f"excluded parameters that are options after all: {ours & NOT_OPTIONS}"
    )
    for name in ours:
        sdk_values = _literal_values(sdk_hints[name])
        if sdk_values:
            assert _literal_values(model.model_fields[name].annotation) == sdk_values, name
        nested, sdk_nested = (
            _our_model(model.model_fields[name].annotation),
            _nested(sdk_hints[name], typing_extensions.is_typeddict),
        )
        if nested is not None:  # an object option: the same keys as the SDK's TypedDict, both ways
            assert sdk_nested is not None, name
            assert set(nested.model_fields) == set(get_type_hints(sdk_nested)), name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"action": "fork_start", "call_control_id": "c", "rx": "udp:1.2.3.4:40000"},
            "both rx and tx",
        ),
        (
            {
                "action": "fork_start",
                "call_control_id": "c",
                "rx": "1.2.3.4:1",
                "tx": "udp:1.2.3.4:2",
            },
            "udp:HOST:PORT",
        ),
        (
            {"action": "streaming_start", "call_control_id": "c", "stream_codec": "MP3"},
            "stream_codec",
        ),
        (
            {"action": "streaming_start", "call_control_id": "c", "stream_url": "http://x"},
            "stream_url",
        ),
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


def runner_settings(url: str, key: str = KEY, max_retries: int = 0) -> TelnyxApiSettings:
    return TelnyxApiSettings(
        telnyx_api_key=key, telnyx_base_url=url, telnyx_max_retries=max_retries
    )


async def run_commands(
    redis: Redis,
    settings: TelnyxApiSettings,
    bodies: list[bytes],
    name: str = "w1",
    rounds: int = 3,
) -> None:
    """Publish each body on its action's topic and let one CommandRunner over call_control.send execute them."""
    client = telnyx_client(settings)
    producer = Producer(redis, 10_000)

    async def execute(command: commands.CallCommand) -> dict | None:  # type: ignore[type-arg]
        await send(client, command)
        return None

    runner = CommandRunner(
        redis, producer, execute, executed_by=name, actions=frozenset(commands.COMMAND_MODELS)
    )
    command_topics = [topics.MEDIA_COMMANDS, topics.TRANSCRIPTION_COMMANDS]
    options = ConsumerOptions(
        group="executors", topics=command_topics, consumer=name, block_ms=50, claim_interval_s=0
    )
    consumer = StreamConsumer(
        redis, producer, options, runner.handle, PrometheusConsumerMetrics(CollectorRegistry())
    )
    for i, body in enumerate(bodies):
        await producer.publish(
            commands.topic_for(codec.loads(body)["action"]), f"c{i}", "command", body
        )
    await consumer.ensure_groups()
    for _ in range(rounds):
        await consumer.run_once()
    await client.close()


async def results(redis: Redis) -> list[dict]:  # type: ignore[type-arg]
    return [
        codec.loads(fields[b"event"]) for _, fields in await redis.xrange(topics.COMMAND_RESULTS)
    ]


def encoded(command: commands.CallCommand) -> bytes:
    return codec.dumps(command.model_dump(mode="json"))


async def test_a_command_is_sent_once_with_its_derived_command_id(
    redis: Redis, fake_api: tuple[FakeTelnyxState, str]
) -> None:
    state, url = fake_api
    call = state.create_call()
    state.answer_call(call.call_control_id)
    command = commands.TranscriptionStart(
        call_control_id=call.call_control_id, transcription_engine="B", correlation_id="agent-7"
    )
    body = encoded(command)
    await run_commands(redis, runner_settings(url), [body, body])  # delivered twice
    sent = state.requests_for(call.call_control_id, "transcription_start")
    assert len(sent) == 1
    assert sent[0].body["command_id"] == f"voicetap:transcription_start:{command.id}"
    assert sent[0].body["transcription_engine"] == "B"
    assert sent[0].headers["authorization"] == f"Bearer {KEY}"
    [result] = await results(redis)
    assert (
        result["ok"] is True
        and result["correlation_id"] == "agent-7"
        and result["command_id"] == command.id
    )


# The options each action needs against the fake API; every other action is sent bare.
ACTION_OPTIONS: dict[str, dict[str, typing.Any]] = {
    "fork_start": {"rx": "udp:127.0.0.1:40000", "tx": "udp:127.0.0.1:40001"},
    "streaming_start": {
        "stream_url": "wss://agent.example/ws",
        "enable_dialogflow": True,
        "dialogflow_config": {"analyze_sentiment": True},
    },
    "transcription_start": {"transcription_engine": "B", "transcription_tracks": "both"},
}


@pytest.mark.parametrize("action", list(commands.COMMAND_MODELS))
async def test_every_action_reaches_the_api_with_its_path_key_and_command_id(
    redis: Redis, fake_api: tuple[FakeTelnyxState, str], action: str
) -> None:
    state, url = fake_api
    call = state.create_call()
    state.answer_call(call.call_control_id)
    command = commands.COMMAND_MODELS[action](
        call_control_id=call.call_control_id, **ACTION_OPTIONS.get(action, {})
    )
    await run_commands(redis, runner_settings(url), [encoded(command)])
    [result] = await results(redis)
    assert result["ok"] is True, result
    [request] = state.requests_for(call.call_control_id)
    assert request.path == f"/v2/calls/{call.call_control_id}/actions/{action}"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert (
        request.body["command_id"]
        == result["telnyx_command_id"]
        == f"voicetap:{action}:{command.id}"
    )
    assert request.body == codec.loads(
        codec.dumps(command.sdk_arguments())
    )  # nothing else, nothing lost on the way
    assert ACTION_OPTIONS.get(action, {}).items() <= request.body.items()


RESTRICTED_KEY = "KEYrestricted_no_call_control"


@pytest.mark.parametrize(
    ("case", "kind", "status", "code"),
    [
        ("unknown call", "unknown_call", 404, "10005"),
        ("ended call", "call_ended", 422, "90018"),
        ("wrong key", "bad_key", 401, "10009"),
        ("restricted key", "not_permitted", 403, "10010"),
        ("call not permitted", "not_permitted", 403, "10010"),
    ],
)
async def test_telnyx_errors_are_named_on_the_result(
    redis: Redis, fake_factory: FakeFactory, case: str, kind: str, status: int, code: str
) -> None:
    state = FakeTelnyxState(KEY, restricted_keys=[RESTRICTED_KEY])
    url = fake_factory(state).url + "/v2"
    call = state.create_call(permitted=case != "call not permitted")
    state.answer_call(call.call_control_id)
    if case == "ended call":
        state.end_call(call.call_control_id)
    call_id = "v3:does-not-exist" if case == "unknown call" else call.call_control_id
    key = {"wrong key": "KEY_wrong", "restricted key": RESTRICTED_KEY}.get(case, KEY)
    await run_commands(
        redis,
        runner_settings(url, key),
        [encoded(commands.TranscriptionStop(call_control_id=call_id))],
    )
    [request] = state.requests
    [result] = await results(redis)
    assert (result["ok"], result["error"]) == (False, kind), result
    assert request.status == status
    assert result["telnyx_errors"] == [
        request.error
    ]  # Telnyx's own error object, as the API sent it
    assert request.error is not None and request.error["code"] == code
    assert result["detail"] == f"{status}: {request.error['detail']}"


async def test_invalid_parameters_carry_telnyxs_own_error_detail(
    redis: Redis, fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    await sdk.calls.actions.start_streaming(
        call.call_control_id, stream_url="wss://agent.example/ws"
    )
    # Well-formed for voicetap, refused by Telnyx: no stream with this id runs on the call.
    command = commands.StreamingStop(
        call_control_id=call.call_control_id, stream_id="stream-that-was-replaced"
    )
    await run_commands(redis, runner_settings(fake.url + "/v2"), [encoded(command)])
    [result] = await results(redis)
    assert (result["ok"], result["error"]) == (False, "invalid_parameters"), result
    assert result["telnyx_errors"] == [
        {
            "code": "10015",
            "title": "Invalid parameter",
            "detail": "The 'stream_id' parameter is invalid: no stream with this id runs on the call",
            "source": {"pointer": "/stream_id"},
            "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/10015"},
        }
    ]
    assert (
        result["detail"]
        == "422: The 'stream_id' parameter is invalid: no stream with this id runs on the call"
    )
    assert call.media is not None  # the stream still runs


async def test_rate_limited_after_the_sdk_retries(redis: Redis, fake_factory: FakeFactory) -> None:
    state = FakeTelnyxState(KEY, rate_limit=1, rate_window=30.0, retry_after=0.01)
    fake = fake_factory(state)
    call = state.create_call()
    async with fake.client() as client:
        await client.calls.actions.answer(call.call_control_id)  # takes the window's one slot
    command = commands.TranscriptionStop(call_control_id=call.call_control_id)
    await run_commands(redis, runner_settings(fake.url + "/v2", max_retries=2), [encoded(command)])
    [result] = await results(redis)
    assert (result["ok"], result["error"]) == (False, "rate_limited"), result
    sent = state.requests_for(call.call_control_id, "transcription_stop")
    assert [r.status for r in sent] == [429, 429, 429]  # the first try and the SDK's two retries
    assert {r.body["command_id"] for r in sent} == {
        result["telnyx_command_id"]
    }  # one command, resent
    assert result["telnyx_errors"][0]["code"] == "10011"
    assert result["detail"].startswith("429: ")


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
    bad = codec.dumps(
        {
            "id": "bad-1",
            "action": "transcription_start",
            "call_control_id": call.call_control_id,
            "transcription_engine": "Nope",
        }
    )
    await run_commands(
        redis, runner_settings(url), [bad, codec.dumps(good.model_dump(mode="json"))]
    )
    by_id = {r["command_id"]: r for r in await results(redis)}
    assert (
        by_id["bad-1"]["error"] == "malformed"
        and "transcription_engine" in by_id["bad-1"]["detail"]
    )
    assert by_id[good.id]["ok"] is True
    dead = await redis.xrange(topics.TRANSCRIPTION_COMMANDS + ".dlq")
    assert [f[b"id"] for _, f in dead] == [b"c0"]
