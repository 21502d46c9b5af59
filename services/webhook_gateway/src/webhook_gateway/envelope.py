"""What the gateway needs from a verified body, checked without re-serialising it.

The gateway only requires what routing and de-duplication need (a JSON object with
``data.event_type`` and ``data.id``); the full typed models in ``voicetap_sdk.events`` are for
consumers. A payload that differs from the models is still published: Telnyx adds fields, and
nothing a valid signature covers is dropped.

An event type the models do not know still gets its topic (``telnyx.<event_type>``), but only when
it is a name Telnyx would send (:data:`EVENT_TYPE`): dotted lower-case segments of letters and
underscores, no digit (no Telnyx event type has one), at most :data:`MAX_EVENT_TYPE_LENGTH`
characters. Anything else (``../../x``, ``call.transc1iption``, 3,000 characters) would become a
Redis stream of that name; it is dead-lettered with the reason ``bad_event_type`` instead.
"""

import re
from dataclasses import dataclass

import orjson

MAX_EVENT_TYPE_LENGTH = 64
EVENT_TYPE = re.compile(r"[a-z][a-z_]*(?:\.[a-z][a-z_]*){1,7}")
BAD_EVENT_TYPE = "bad_event_type"


def is_event_type(name: str) -> bool:
    """Whether ``name`` looks like a Telnyx event type (see the module's docstring)."""
    return len(name) <= MAX_EVENT_TYPE_LENGTH and EVENT_TYPE.fullmatch(name) is not None


class MalformedEvent(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EventKey:
    event_id: str
    event_type: str
    call_control_id: str | None
    attempt: str | None


def read_event_key(body: bytes) -> EventKey:
    """The routing fields of a webhook body; raises :class:`MalformedEvent` (415 or 400)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(415, f"body is not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedEvent(400, f"body is JSON but not an object (got {type(document).__name__})")
    data = document.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent(400, "body has no `data` object")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent(400, "`data.event_type` is missing or not a non-empty string")
    if not is_event_type(event_type):
        raise MalformedEvent(
            400,
            f"{BAD_EVENT_TYPE}: `data.event_type` is not a Telnyx event type name (dotted lower-case "
            f"segments of a-z and _, 2 to 8 of them, at most {MAX_EVENT_TYPE_LENGTH} characters)",
        )
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent(400, "`data.id` is missing or not a non-empty string")
    payload = data.get("payload")
    call_control_id = payload.get("call_control_id") if isinstance(payload, dict) else None
    meta = document.get("meta")
    attempt = meta.get("attempt") if isinstance(meta, dict) else None
    return EventKey(
        event_id=event_id,
        event_type=event_type,
        call_control_id=call_control_id if isinstance(call_control_id, str) else None,
        attempt=str(attempt) if isinstance(attempt, int) else None,
    )
