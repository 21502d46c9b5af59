"""The fake Call Control API through the real ``telnyx`` SDK."""

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import telnyx

from telnyx_simulator.state import Effect, FakeTelnyxState
from tests.conftest import API_KEY, Fake, FakeFactory

Call = Callable[[telnyx.AsyncTelnyx, str], Awaitable[Any]]

ACTIONS: list[tuple[str, Call, dict[str, Any]]] = [
    ("answer", lambda c, i: c.calls.actions.answer(i, command_id="a1"), {"command_id": "a1"}),
    (
        "fork_start",
        lambda c, i: c.calls.actions.start_forking(
            i,
            rx="udp:127.0.0.1:40000",
            tx="udp:127.0.0.1:40001",
            stream_type="decrypted",
            command_id="f1",
        ),
        {
            "rx": "udp:127.0.0.1:40000",
            "tx": "udp:127.0.0.1:40001",
            "stream_type": "decrypted",
            "command_id": "f1",
        },
    ),
    (
        "fork_stop",
        lambda c, i: c.calls.actions.stop_forking(i, stream_type="decrypted"),
        {"stream_type": "decrypted"},
    ),
    (
        "streaming_start",
        lambda c, i: c.calls.actions.start_streaming(
            i,
            stream_url="wss://media.example/ws",
            stream_track="both_tracks",
            stream_codec="PCMU",
            stream_auth_token="tok",
        ),
        {
            "stream_url": "wss://media.example/ws",
            "stream_track": "both_tracks",
            "stream_codec": "PCMU",
            "stream_auth_token": "tok",
        },
    ),
    ("streaming_stop", lambda c, i: c.calls.actions.stop_streaming(i), {}),
    (
        "transcription_start",
        lambda c, i: c.calls.actions.start_transcription(
            i, transcription_engine="B", transcription_tracks="both"
        ),
        {"transcription_engine": "B", "transcription_tracks": "both"},
    ),
    ("transcription_stop", lambda c, i: c.calls.actions.stop_transcription(i), {}),
    ("hangup", lambda c, i: c.calls.actions.hangup(i), {}),
]


@pytest.mark.parametrize(("action", "call", "body"), ACTIONS, ids=[a[0] for a in ACTIONS])
async def test_each_action_is_recorded_with_path_body_and_key(
    fake: Fake, sdk: telnyx.AsyncTelnyx, action: str, call: Call, body: dict[str, Any]
) -> None:
    sim_call = fake.state.create_call()
    response = await call(sdk, sim_call.call_control_id)

    assert response.data.result == "ok"
    [request] = fake.state.requests
    assert request.method == "POST"
    assert request.path == f"/v2/calls/{sim_call.call_control_id}/actions/{action}"
    assert request.body == body
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert (request.status, request.duplicate, request.action) == (200, False, action)


async def test_accepted_commands_become_effects_and_state(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    call = fake.state.create_call()
    await sdk.calls.actions.answer(call.call_control_id)
    await sdk.calls.actions.start_transcription(call.call_control_id, transcription_engine="Google")
    await sdk.calls.actions.start_forking(
        call.call_control_id,
        rx="udp:127.0.0.1:40000",
        tx="udp:127.0.0.1:40001",
        stream_type="decrypted",
    )
    assert call.state == "answered"
    assert call.transcription == {"transcription_engine": "Google"}
    assert call.media is not None and call.media.kind == "fork"
    effects = _drain(call.effects)
    assert [e.action for e in effects] == ["answer", "transcription_start", "fork_start"]
    assert effects[2].params["rx"] == "udp:127.0.0.1:40000"

    await sdk.calls.actions.hangup(call.call_control_id)
    assert call.state == "ended" and call.media is None
    assert [e.action for e in _drain(call.effects)] == ["hangup"]


async def test_wrong_or_missing_key_is_401(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    call = fake.state.create_call()
    monkeypatch.delenv("TELNYX_API_KEY", raising=False)
    for key in ("KEYwrong", None):
        async with fake.client(api_key=key) as client:
            with pytest.raises(telnyx.AuthenticationError) as caught:
                await client.calls.actions.answer(call.call_control_id)
        assert caught.value.status_code == 401
        assert _error(caught.value)["code"] == "10009"
    assert [r.status for r in fake.state.requests] == [401, 401]
    assert "authorization" not in fake.state.requests[1].headers
    assert call.state == "parked"


async def test_a_restricted_key_is_403_for_every_call(fake_factory: FakeFactory) -> None:
    state = FakeTelnyxState(API_KEY, restricted_keys=["KEYrestricted"])
    call = state.create_call()
    async with fake_factory(state).client(api_key="KEYrestricted") as client:
        with pytest.raises(telnyx.PermissionDeniedError) as caught:
            await client.calls.actions.start_transcription(call.call_control_id)
    assert caught.value.status_code == 403
    assert _error(caught.value) == {
        "code": "10010",
        "title": "Authorization failed",
        "detail": "You do not have permission to perform the requested action on the specified resource or resources.",
        "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/10010"},
    }
    assert call.transcription is None and call.effects.empty()


async def test_a_call_not_permitted_is_403_while_others_are_served(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    forbidden = fake.state.create_call(permitted=False)
    allowed = fake.state.create_call()
    with pytest.raises(telnyx.PermissionDeniedError) as caught:
        await sdk.calls.actions.hangup(forbidden.call_control_id)
    assert _error(caught.value)["code"] == "10010"
    await sdk.calls.actions.hangup(allowed.call_control_id)
    assert (forbidden.state, allowed.state) == ("parked", "ended")
    assert [r.status for r in fake.state.requests] == [403, 200]


async def test_unknown_call_is_404(sdk: telnyx.AsyncTelnyx) -> None:
    with pytest.raises(telnyx.NotFoundError) as caught:
        await sdk.calls.actions.start_forking(
            "v3:nope", rx="udp:127.0.0.1:1", tx="udp:127.0.0.1:2", stream_type="decrypted"
        )
    assert _error(caught.value)["code"] == "10005"


async def test_command_on_ended_call_is_422_90018(fake: Fake, sdk: telnyx.AsyncTelnyx) -> None:
    call = fake.state.create_call()
    fake.state.end_call(call.call_control_id)
    with pytest.raises(telnyx.UnprocessableEntityError) as caught:
        await sdk.calls.actions.start_transcription(call.call_control_id)
    assert _error(caught.value)["code"] == "90018"
    assert "ended" in _error(caught.value)["title"]


INVALID: list[tuple[str, Call]] = [
    (
        "rx",
        lambda c, i: c.calls.actions.start_forking(
            i, rx="127.0.0.1:40000", tx="udp:127.0.0.1:1", stream_type="decrypted"
        ),
    ),
    (
        "tx",
        lambda c, i: c.calls.actions.start_forking(
            i, rx="udp:127.0.0.1:1", tx="udp:127.0.0.1:99999", stream_type="decrypted"
        ),
    ),
    (
        "tx",
        lambda c, i: c.calls.actions.start_forking(
            i, rx="udp:127.0.0.1:1", stream_type="decrypted"
        ),
    ),
    (
        "stream_type",
        lambda c, i: c.calls.actions.start_forking(i, rx="udp:127.0.0.1:1", tx="udp:127.0.0.1:2"),
    ),
    ("rx", lambda c, i: c.calls.actions.start_forking(i)),
    (
        "stream_type",
        lambda c, i: c.calls.actions.stop_forking(i, extra_body={"stream_type": "mixed"}),
    ),
    ("stream_url", lambda c, i: c.calls.actions.start_streaming(i, stream_track="both_tracks")),
    (
        "stream_url",
        lambda c, i: c.calls.actions.start_streaming(i, stream_url="https://media.example/ws"),
    ),
    (
        "stream_track",
        lambda c, i: c.calls.actions.start_streaming(
            i, stream_url="wss://m.example", extra_body={"stream_track": "both"}
        ),
    ),
    (
        "stream_codec",
        lambda c, i: c.calls.actions.start_streaming(
            i, stream_url="wss://m.example", extra_body={"stream_codec": "ulaw"}
        ),
    ),
    (
        "stream_auth_token",
        lambda c, i: c.calls.actions.start_streaming(
            i, stream_url="wss://m.example", stream_auth_token="x" * 4001
        ),
    ),
    (
        "transcription_engine",
        lambda c, i: c.calls.actions.start_transcription(
            i, extra_body={"transcription_engine": "C"}
        ),
    ),
    (
        "transcription_tracks",
        lambda c, i: c.calls.actions.start_transcription(i, transcription_tracks="left"),
    ),
    (
        "enable_dialogflow",
        lambda c, i: c.calls.actions.start_streaming(
            i, stream_url="wss://m.example", extra_body={"enable_dialogflow": "yes"}
        ),
    ),
    (
        "dialogflow_config",
        lambda c, i: c.calls.actions.start_streaming(
            i,
            stream_url="wss://m.example",
            extra_body={"dialogflow_config": {"analyze_sentiment": 1}},
        ),
    ),
    ("client_state", lambda c, i: c.calls.actions.answer(i, client_state="not base64!")),
]


@pytest.mark.parametrize(
    ("field", "call"), INVALID, ids=[f"{n}-{f}" for n, (f, _) in enumerate(INVALID)]
)
async def test_invalid_parameters_are_422_naming_the_field(
    fake: Fake, sdk: telnyx.AsyncTelnyx, field: str, call: Call
) -> None:
    sim_call = fake.state.create_call()
    with pytest.raises(telnyx.UnprocessableEntityError) as caught:
        await call(sdk, sim_call.call_control_id)
    error = _error(caught.value)
    assert f"'{field}'" in error["detail"]
    assert error["source"] == {"pointer": f"/{field}"}
    assert sim_call.effects.empty() and sim_call.media is None and sim_call.state == "parked"


async def test_rate_limit_is_429_after_the_sdk_retries_honouring_retry_after(
    fake_factory: FakeFactory,
) -> None:
    state = FakeTelnyxState(API_KEY, rate_limit=1, rate_window=30.0, retry_after=0.05)
    call = state.create_call()
    async with fake_factory(state).client(max_retries=2) as client:
        await client.calls.actions.answer(call.call_control_id)
        with pytest.raises(telnyx.RateLimitError) as caught:
            await client.calls.actions.hangup(call.call_control_id)
    assert caught.value.response.headers["retry-after"] == "0.050"
    assert _error(caught.value)["code"] == "10011"
    limited = [r for r in state.requests if r.status == 429]
    assert len(limited) == 3  # the first try and the SDK's two retries
    gaps = [b.at - a.at for a, b in itertools.pairwise(limited)]
    assert all(0.04 <= gap < 0.5 for gap in gaps), gaps  # Retry-After, not the SDK's 0.5 s backoff
    assert call.state == "answered"


async def test_rate_limited_command_succeeds_on_the_sdk_retry_once_the_window_frees(
    fake_factory: FakeFactory,
) -> None:
    state = FakeTelnyxState(API_KEY, rate_limit=1, rate_window=0.1, retry_after=0.15)
    call = state.create_call()
    async with fake_factory(state).client(max_retries=2) as client:
        await client.calls.actions.answer(call.call_control_id)
        await client.calls.actions.hangup(call.call_control_id)
    assert [r.status for r in state.requests][-1] == 200
    assert 429 in [r.status for r in state.requests]
    assert call.state == "ended"


def test_retry_after_defaults_to_whole_seconds_until_the_window_frees() -> None:
    now = [0.0]
    state = FakeTelnyxState(API_KEY, rate_limit=1, rate_window=30.0, clock=lambda: now[0])
    call = state.create_call()
    headers = {"authorization": f"Bearer {API_KEY}"}
    path = f"/v2/calls/{call.call_control_id}/actions/answer"
    assert state.handle("POST", path, headers, b"{}", call.call_control_id, "answer").status == 200
    now[0] = 10.5
    limited = state.handle("POST", path, headers, b"{}", call.call_control_id, "answer")
    assert (limited.status, limited.headers["retry-after"]) == (429, "20")
    now[0] = 30.0
    assert state.handle("POST", path, headers, b"{}", call.call_control_id, "answer").status == 200


async def test_command_id_is_deduplicated_for_60_seconds(fake_factory: FakeFactory) -> None:
    now = [1000.0]
    state = FakeTelnyxState(API_KEY, clock=lambda: now[0])
    call = state.create_call()
    async with fake_factory(state).client() as client:
        for _ in range(2):
            response = await client.calls.actions.start_transcription(
                call.call_control_id, command_id="t:evt-1"
            )
            assert response.data.result == "ok"
        await client.calls.actions.start_transcription(call.call_control_id, command_id="t:evt-2")
        now[0] += 59.9
        await client.calls.actions.start_transcription(call.call_control_id, command_id="t:evt-1")
        now[0] += 0.1
        await client.calls.actions.start_transcription(call.call_control_id, command_id="t:evt-1")
    assert [r.duplicate for r in state.requests] == [False, True, False, True, False]
    assert len(_drain(call.effects)) == 3


async def test_duplicate_command_on_ended_call_still_answers_ok(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    call = fake.state.create_call()
    await sdk.calls.actions.hangup(call.call_control_id, command_id="h1")
    await sdk.calls.actions.hangup(call.call_control_id, command_id="h1")
    with pytest.raises(telnyx.UnprocessableEntityError):
        await sdk.calls.actions.hangup(call.call_control_id, command_id="h2")
    assert [(r.status, r.duplicate) for r in fake.state.requests] == [
        (200, False),
        (200, True),
        (422, False),
    ]


async def test_one_media_operation_per_call(fake: Fake, sdk: telnyx.AsyncTelnyx) -> None:
    call = fake.state.create_call()
    cid = call.call_control_id
    await sdk.calls.actions.start_streaming(cid, stream_url="ws://127.0.0.1:9/ws")
    assert call.media is not None and call.media.kind == "streaming"
    stream_id = call.media.stream_id
    await sdk.calls.actions.start_forking(
        cid, rx="udp:127.0.0.1:40000", tx="udp:127.0.0.1:40001", stream_type="decrypted"
    )
    assert call.media.kind == "fork"
    await sdk.calls.actions.start_streaming(cid, stream_url="ws://127.0.0.1:9/ws2")
    assert call.media.kind == "streaming"

    effects = _drain(call.effects)
    assert [(e.action, e.origin) for e in effects] == [
        ("streaming_start", "api"),
        ("streaming_stop", "simulator"),
        ("fork_start", "api"),
        ("fork_stop", "simulator"),
        ("streaming_start", "api"),
    ]
    assert effects[0].params["stream_id"] == stream_id
    assert effects[1].params == {"stream_id": stream_id, "stream_type": None, "reason": "replaced"}
    with pytest.raises(telnyx.UnprocessableEntityError):
        await sdk.calls.actions.stop_streaming(cid, stream_id=stream_id)  # that stream was replaced
    await sdk.calls.actions.stop_streaming(cid)
    assert call.media is None


async def test_sim_routes_create_calls_and_list_requests(
    fake: Fake, sdk: telnyx.AsyncTelnyx
) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        created = await http.post("/_sim/calls", json={"from": "+15550001", "to": "+15550002"})
        assert created.status_code == 201
        cid = created.json()["data"]["call_control_id"]
        refused = await http.post("/_sim/calls", json={"permitted": False})
        assert refused.json()["data"]["permitted"] is False
        with pytest.raises(telnyx.PermissionDeniedError):
            await sdk.calls.actions.answer(refused.json()["data"]["call_control_id"])
        await sdk.calls.actions.answer(cid)
        listed = (await http.get("/_sim/requests", params={"call_control_id": cid})).json()["data"]
        assert [(r["action"], r["status"], r["headers"]["authorization"]) for r in listed] == [
            ("answer", 200, f"Bearer {API_KEY}")
        ]
        hung = await http.post(f"/_sim/calls/{cid}/hangup", json={"hangup_cause": "user_busy"})
        assert hung.json()["data"]["state"] == "ended"
        assert (await http.get("/_sim/calls/v3:none")).status_code == 404
    assert _drain(fake.state.call(cid).effects)[-1] == Effect(
        "hangup", cid, {"hangup_source": "caller", "hangup_cause": "user_busy"}, origin="simulator"
    )


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict)
    return exc.body["errors"][0]


def _drain(queue: asyncio.Queue[Effect]) -> list[Effect]:
    items: list[Effect] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
