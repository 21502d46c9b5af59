"""The fake Telnyx Call Control API as a Starlette app.

``POST /v2/calls/{call_control_id}/actions/{action}`` behaves like the real API (see
:class:`~telnyx_simulator.state.FakeTelnyxState`); the SDK reaches it with
``telnyx.AsyncTelnyx(api_key=..., base_url=f"{url}/v2")`` (its default base URL ends in ``/v2``).
The simulator's own control surface lives under ``/_sim/`` and takes no key:

| route | does |
| --- | --- |
| ``GET /_sim/requests`` | every recorded request (filters: ``call_control_id``, ``action``) |
| ``GET /_sim/calls`` / ``GET /_sim/calls/{id}`` | calls and their state |
| ``POST /_sim/calls`` | create a call (JSON: ``from``, ``to``, ``direction``, ``call_control_id``, ``client_state``, ``permitted``: false to have every command on it answered 403) |
| ``POST /_sim/calls/{id}/hangup`` | end a call from the network side (JSON: ``hangup_source``, ``hangup_cause``) |
"""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telnyx_simulator.errors import not_found
from telnyx_simulator.state import FakeTelnyxState, SimCall
from voicetap_sdk import codec


def create_fake_api(state: FakeTelnyxState) -> Starlette:
    async def action(request: Request) -> Response:
        answer = state.handle(
            request.method,
            request.url.path,
            request.headers,
            await request.body(),
            request.path_params["call_control_id"],
            request.path_params["action"],
        )
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    async def list_requests(request: Request) -> Response:
        found = state.requests_for(
            request.query_params.get("call_control_id"), request.query_params.get("action")
        )
        return JSONResponse({"data": [r.to_json() for r in found]})

    async def list_calls(_: Request) -> Response:
        return JSONResponse({"data": [c.to_json() for c in state.calls]})

    async def get_call(request: Request) -> Response:
        call = _find(state, request)
        return JSONResponse({"data": call.to_json()}) if call else _not_found()

    async def create_call(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return JSONResponse(
                {"errors": [{"detail": "body must be a JSON object"}]}, status_code=400
            )
        call = state.create_call(
            from_=body.get("from", "+13125550100"),
            to=body.get("to", "+13125550199"),
            direction=body.get("direction", "incoming"),
            call_control_id=body.get("call_control_id"),
            client_state=body.get("client_state"),
            permitted=body.get("permitted", True) is not False,
        )
        return JSONResponse({"data": call.to_json()}, status_code=201)

    async def hangup_call(request: Request) -> Response:
        call = _find(state, request)
        if call is None:
            return _not_found()
        body = await _json_object(request) or {}
        state.end_call(
            call.call_control_id,
            hangup_source=body.get("hangup_source", "caller"),
            hangup_cause=body.get("hangup_cause", "normal_clearing"),
        )
        return JSONResponse({"data": call.to_json()})

    return Starlette(
        routes=[
            Route("/v2/calls/{call_control_id}/actions/{action}", action, methods=["POST"]),
            Route("/_sim/requests", list_requests, methods=["GET"]),
            Route("/_sim/calls", list_calls, methods=["GET"]),
            Route("/_sim/calls", create_call, methods=["POST"]),
            Route("/_sim/calls/{call_control_id}", get_call, methods=["GET"]),
            Route("/_sim/calls/{call_control_id}/hangup", hangup_call, methods=["POST"]),
        ]
    )


def _find(state: FakeTelnyxState, request: Request) -> SimCall | None:
    try:
        return state.call(request.path_params["call_control_id"])
    except KeyError:
        return None


def _not_found() -> Response:
    error = not_found("No such call.")
    return JSONResponse(error.body(), status_code=error.status)


async def _json_object(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = codec.loads(raw)
    except codec.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None
