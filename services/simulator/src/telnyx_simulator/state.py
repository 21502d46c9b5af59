"""The fake Telnyx's memory: calls, their media operations, every request it was sent.

:meth:`FakeTelnyxState.handle` is the whole Call Control logic without HTTP (``fake_api`` is the
thin Starlette glue over it). Each accepted command becomes an :class:`Effect` on the call's
``effects`` queue, which the call player consumes to send the matching webhooks and media.

Where Telnyx documents no behaviour the simulator is lenient: ``answer`` on an answered call and
a stop with nothing running answer ok and do nothing; a ``command_id`` seen within the window
answers ok even after the call ended (the first command did take effect).
"""

import asyncio
import hmac
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from telnyx_simulator.errors import (
    ApiError,
    authentication_failed,
    bad_request,
    call_ended,
    invalid,
    not_found,
    not_permitted,
    too_many_requests,
)
from telnyx_simulator.validation import validate
from voicetap_sdk import codec

CallState = Literal["parked", "answered", "ended"]


@dataclass(frozen=True, slots=True)
class Effect:
    """What an accepted command (``origin="api"``) or the simulator itself asks a call to do.

    ``action`` is the Call Control action name (``fork_start``, ``streaming_stop``, ``hangup``…);
    ``params`` the command's body, plus ``stream_id`` for streaming and ``reason: "replaced"`` when a
    new media operation displaces the running one.
    """

    action: str
    call_control_id: str
    params: dict[str, Any]
    origin: Literal["api", "simulator"] = "api"


@dataclass(slots=True)
class MediaOperation:
    """The call's one media operation: an RTP fork or a WebSocket stream."""

    kind: Literal["fork", "streaming"]
    params: dict[str, Any]
    stream_id: str


@dataclass(slots=True)
class SimCall:
    call_control_id: str
    call_leg_id: str
    call_session_id: str
    connection_id: str
    from_: str
    to: str
    direction: Literal["incoming", "outgoing"]
    client_state: str | None = None
    permitted: bool = True  # False: the account's key may not control this call (answers 403)
    state: CallState = "parked"
    media: MediaOperation | None = None
    transcription: dict[str, Any] | None = None
    effects: asyncio.Queue[Effect] = field(default_factory=asyncio.Queue, repr=False)

    def ids(self) -> dict[str, Any]:
        """The ids every webhook payload of this call carries."""
        return {
            "call_control_id": self.call_control_id,
            "call_leg_id": self.call_leg_id,
            "call_session_id": self.call_session_id,
            "connection_id": self.connection_id,
            "client_state": self.client_state,
        }

    def to_json(self) -> dict[str, Any]:
        media = self.media
        return {
            **self.ids(),
            "from": self.from_,
            "to": self.to,
            "direction": self.direction,
            "state": self.state,
            "permitted": self.permitted,
            "media": None
            if media is None
            else {"kind": media.kind, "stream_id": media.stream_id, "params": media.params},
            "transcription": self.transcription,
        }


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    call_control_id: str | None
    action: str | None
    status: int = 200
    duplicate: bool = False
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "at": self.at,
            "call_control_id": self.call_control_id,
            "action": self.action,
            "status": self.status,
            "duplicate": self.duplicate,
            "error": self.error,
        }


@dataclass(slots=True)
class Answer:
    """An HTTP answer of the fake API."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


OK_BODY: dict[str, Any] = {"data": {"result": "ok"}}


def new_call_control_id() -> str:
    """Shaped like Telnyx's (``v3:`` and an opaque url-safe token)."""
    return "v3:" + secrets.token_urlsafe(24)


class FakeTelnyxState:
    """Calls and request log of one fake Telnyx account.

    ``rate_limit`` requests per ``rate_window`` seconds are accepted (None: no limit); beyond it
    the API answers 429 with ``Retry-After`` (``retry_after`` seconds if given, else the whole
    seconds until the window frees a slot, at least 1). ``clock`` (monotonic seconds) drives the rate limit and the
    ``command_id`` de-duplication window, so tests can move time.

    Refusals with 403 (Telnyx code 10010): ``restricted_keys`` authenticate but may not use Call
    Control at all (a key without that permission); a call created with ``permitted=False`` may not
    be controlled with any key (it belongs to a connection the account's key cannot act on).
    """

    def __init__(
        self,
        api_key: str,
        *,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        retry_after: float | None = None,
        dedupe_seconds: float = 60.0,
        restricted_keys: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.restricted_keys = frozenset(restricted_keys)
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.retry_after = retry_after
        self.dedupe_seconds = dedupe_seconds
        self._clock = clock
        self._calls: dict[str, SimCall] = {}
        self._commands: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()
        self.requests: list[RecordedRequest] = []

    # -- calls ---------------------------------------------------------------------------------
    def create_call(
        self,
        *,
        from_: str = "+13125550100",
        to: str = "+13125550199",
        direction: Literal["incoming", "outgoing"] = "incoming",
        call_control_id: str | None = None,
        client_state: str | None = None,
        permitted: bool = True,
    ) -> SimCall:
        call = SimCall(
            call_control_id=call_control_id or new_call_control_id(),
            call_leg_id=str(uuid.uuid4()),
            call_session_id=str(uuid.uuid4()),
            connection_id=str(secrets.randbelow(9 * 10**18) + 10**18),
            from_=from_,
            to=to,
            direction=direction,
            client_state=client_state,
            permitted=permitted,
        )
        self._calls[call.call_control_id] = call
        return call

    def call(self, call_control_id: str) -> SimCall:
        """The call; ``KeyError`` when unknown."""
        return self._calls[call_control_id]

    @property
    def calls(self) -> list[SimCall]:
        return list(self._calls.values())

    def answer_call(self, call_control_id: str) -> SimCall:
        """The callee answers (not through the API): the player announces ``call.answered``."""
        call = self._calls[call_control_id]
        if call.state == "parked":
            call.state = "answered"
            call.effects.put_nowait(Effect("answer", call_control_id, {}, origin="simulator"))
        return call

    def end_call(
        self,
        call_control_id: str,
        *,
        hangup_source: str = "caller",
        hangup_cause: str = "normal_clearing",
    ) -> SimCall:
        """Hang the call up from the network side; the player sends ``call.hangup`` with these."""
        call = self._calls[call_control_id]
        if call.state != "ended":
            self._end(call)
            params = {"hangup_source": hangup_source, "hangup_cause": hangup_cause}
            call.effects.put_nowait(Effect("hangup", call_control_id, params, origin="simulator"))
        return call

    def requests_for(
        self, call_control_id: str | None = None, action: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (call_control_id is None or r.call_control_id == call_control_id)
            and (action is None or r.action == action)
        ]

    # -- the API ---------------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        raw_body: bytes,
        call_control_id: str,
        action: str,
    ) -> Answer:
        """Answer one ``POST /v2/calls/{call_control_id}/actions/{action}`` and record it."""
        try:
            body = codec.loads(raw_body) if raw_body else {}
        except codec.JSONDecodeError:
            body = raw_body.decode("utf-8", "replace")
        record = RecordedRequest(
            method, path, dict(headers), body, time.time(), call_control_id, action
        )
        self.requests.append(record)
        try:
            answer = self._handle(headers, body, call_control_id, action, record)
        except ApiError as error:
            answer = Answer(error.status, error.body())
            if error.status == 429:
                answer.headers["retry-after"] = self._retry_after_header()
            record.error = answer.body["errors"][0]
        record.status = answer.status
        return answer

    def _handle(
        self,
        headers: Mapping[str, str],
        body: Any,
        call_control_id: str,
        action: str,
        record: RecordedRequest,
    ) -> Answer:
        presented = headers.get("authorization", "").encode()
        restricted = any(
            hmac.compare_digest(presented, f"Bearer {key}".encode()) for key in self.restricted_keys
        )
        if not restricted and not hmac.compare_digest(presented, f"Bearer {self.api_key}".encode()):
            raise authentication_failed()
        self._take_rate_slot()
        if restricted:
            raise not_permitted()
        call = self._calls.get(call_control_id)
        if call is None:
            raise not_found("Call not found: no call has this call_control_id.")
        if not call.permitted:
            raise not_permitted()
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        validate(action, body)
        command_id = body.get("command_id")
        now = self._clock()
        if command_id is not None:
            executed_at = self._commands.get((call_control_id, command_id))
            if executed_at is not None and now - executed_at < self.dedupe_seconds:
                record.duplicate = True
                return Answer(200, OK_BODY)
        if call.state == "ended":
            raise call_ended()
        self._execute(call, action, body)
        if command_id is not None:
            self._commands[(call_control_id, command_id)] = now
        return Answer(200, OK_BODY)

    def _take_rate_slot(self) -> None:
        if self.rate_limit is None:
            return
        now = self._clock()
        while self._recent and now - self._recent[0] >= self.rate_window:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit:
            raise too_many_requests()
        self._recent.append(now)

    def _retry_after_header(self) -> str:
        """``retry_after`` as given (fractions allowed, for fast tests), else whole seconds until a slot frees."""
        if self.retry_after is not None:
            return (
                str(int(self.retry_after))
                if float(self.retry_after).is_integer()
                else f"{self.retry_after:.3f}"
            )
        wait = self.rate_window - (self._clock() - self._recent[0]) if self._recent else 0.0
        return str(max(1, math.ceil(wait)))

    def _execute(self, call: SimCall, action: str, body: dict[str, Any]) -> None:
        effects: list[Effect] = []
        cid = call.call_control_id
        if action == "answer":
            if call.state != "parked":
                return
            call.state = "answered"
        elif action == "hangup":
            self._end(call)
        elif action in ("fork_start", "streaming_start"):
            kind: Literal["fork", "streaming"] = "fork" if action == "fork_start" else "streaming"
            if call.media is not None:
                effects.append(self._stop_effect(call.media, cid, {"reason": "replaced"}))
            call.media = MediaOperation(kind, body, str(uuid.uuid4()))
            body = {**body, "stream_id": call.media.stream_id} if kind == "streaming" else body
        elif action in ("fork_stop", "streaming_stop"):
            media = call.media
            if media is None or media.kind != ("fork" if action == "fork_stop" else "streaming"):
                return
            stream_id = body.get("stream_id")
            if stream_id is not None and stream_id != media.stream_id:
                raise invalid("stream_id", "no stream with this id runs on the call")
            call.media = None
            body = {**body, "stream_id": media.stream_id}
        elif action == "transcription_start":
            call.transcription = body
        elif action == "transcription_stop":
            if call.transcription is None:
                return
            call.transcription = None
        effects.append(Effect(action, cid, body))
        for effect in effects:
            call.effects.put_nowait(effect)

    @staticmethod
    def _stop_effect(media: MediaOperation, call_control_id: str, extra: dict[str, Any]) -> Effect:
        action = "fork_stop" if media.kind == "fork" else "streaming_stop"
        params = {
            "stream_id": media.stream_id,
            "stream_type": media.params.get("stream_type"),
            **extra,
        }
        return Effect(action, call_control_id, params, origin="simulator")

    @staticmethod
    def _end(call: SimCall) -> None:
        call.state = "ended"
        call.media = None
        call.transcription = None
