"""The live calls board: every active call and the recently ended ones, built from topic entries.

Pure state, no I/O: :meth:`Board.apply` takes one entry (topic, event JSON) at a time, in any
order, as Telnyx does not order webhooks: a call that has hung up stays ended whatever comes
after, and a field once known is not overwritten by an older event's empty one.
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from voicetap_sdk.topics import (
    CALL_ANSWERED,
    CALL_FORK_STARTED,
    CALL_HANGUP,
    CALL_INITIATED,
    MEDIA_ANALYTICS,
    MEDIA_ERROR,
    RECORDING_COMPLETED,
    STREAMING_FAILED,
    STREAMING_STARTED,
)

LEGS = ("inbound", "outbound")
MAX_ERRORS = 5


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class Call:
    call_control_id: str
    from_: str | None = None
    to: str | None = None
    direction: str | None = None
    initiated_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: str | None = None
    quality: dict[str, Any] | None = None  # Telnyx's call_quality_stats of the hang-up
    media: list[str] = field(default_factory=list)
    levels: dict[str, dict[str, Any]] | None = None
    overtalk: bool = False
    overtalk_total: float = 0.0
    media_seconds: float = 0.0
    origin: datetime | None = None  # wall-clock moment of the recording's second 0
    recording: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    line_ends: dict[str | None, float] = field(default_factory=dict)  # per transcript track

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def timeline_origin(self) -> datetime | None:
        """Second 0 of the recording: measured from the media when seen, else the answer."""
        return self.origin or self.answered_at or self.initiated_at

    def as_json(self) -> dict[str, Any]:
        state = "ended" if self.ended else "active" if self.answered_at else "ringing"
        return {
            "call_control_id": self.call_control_id,
            "from": self.from_,
            "to": self.to,
            "direction": self.direction,
            "state": state,
            "initiated_at": _iso(self.initiated_at),
            "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at),
            "hangup_cause": self.hangup_cause,
            "quality": self.quality,
            "media": self.media,
            "levels": self.levels,
            "overtalk": self.overtalk,
            "overtalk_total": self.overtalk_total,
            "media_seconds": self.media_seconds,
            "origin": _iso(self.timeline_origin()),
            "health": health(self),
            "recording": self.recording,
            "errors": self.errors,
        }


def health(call: Call) -> dict[str, Any]:
    """Loss and jitter per leg once the recording says them; until then the media errors seen."""
    legs = (call.recording or {}).get("legs") or {}
    summary: dict[str, Any] = {"errors": len(call.errors)}
    for leg in LEGS:
        stats = legs.get(leg)
        if not stats:
            continue
        received, lost = int(stats.get("received", 0)), int(stats.get("lost", 0))
        total = received + lost
        summary[leg] = {
            "loss_pct": round(100.0 * lost / total, 2) if total else 0.0,
            "jitter_ms": stats.get("jitter_ms"),
            "codec": stats.get("codec"),
        }
    return summary


class Board:
    """Active calls by id, and the last ``recent`` ended ones (newest last)."""

    def __init__(self, recent: int) -> None:
        self._recent_max = recent
        self.active: dict[str, Call] = {}
        self.recent: OrderedDict[str, Call] = OrderedDict()

    def get(self, call_control_id: str) -> Call | None:
        return self.active.get(call_control_id) or self.recent.get(call_control_id)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "active": [c.as_json() for c in self.active.values()],
            "recent": [c.as_json() for c in reversed(self.recent.values())],
        }

    def apply(self, topic: str, event: dict[str, Any]) -> Call | None:
        """Fold one event into the board; the call it changed, or None (not a call event)."""
        if topic.startswith("telnyx."):
            return self._telnyx(topic, event.get("data") or {})
        ccid = event.get("call_control_id")
        if not isinstance(ccid, str) or not ccid:
            return None
        if topic == MEDIA_ANALYTICS:
            return self._analytics(ccid, event)
        if topic == RECORDING_COMPLETED:
            known = self.get(ccid) is not None
            call = self._call(ccid)
            call.recording = {
                key: event.get(key)
                for key in (
                    "duration", "codec", "sample_rate", "channels", "paused", "legs",
                    "analytics", "media", "reason", "recovered", "completed_at",
                )
            }  # fmt: skip
            for kind in event.get("media") or []:
                _add(call.media, kind)
            completed, duration = parse_time(event.get("completed_at")), event.get("duration")
            if call.origin is None and completed is not None and isinstance(duration, int | float):
                call.origin = completed - timedelta(seconds=duration)
            if not known:  # its hang-up is older than the board: it ended, not starting
                self._end(call, completed)
            return call
        if topic == MEDIA_ERROR:
            call = self._call(ccid)
            call.errors = [*call.errors, f"{event.get('kind')}: {event.get('detail')}"][
                -MAX_ERRORS:
            ]
            return call
        return None

    def _telnyx(self, topic: str, data: dict[str, Any]) -> Call | None:
        payload = data.get("payload") or {}
        ccid = payload.get("call_control_id")
        if not isinstance(ccid, str) or not ccid:
            return None
        at = parse_time(data.get("occurred_at"))
        call = self._call(ccid)
        call.from_ = call.from_ or payload.get("from")
        call.to = call.to or payload.get("to")
        call.direction = call.direction or payload.get("direction")
        if topic == CALL_INITIATED:
            call.initiated_at = call.initiated_at or at or parse_time(payload.get("start_time"))
        elif topic == CALL_ANSWERED:
            call.answered_at = call.answered_at or at
        elif topic == CALL_HANGUP:
            call.hangup_cause = payload.get("hangup_cause")
            call.quality = payload.get("call_quality_stats")
            self._end(call, at)
        elif topic == CALL_FORK_STARTED:
            _add(call.media, "fork")
        elif topic in (STREAMING_STARTED, STREAMING_FAILED):
            _add(call.media, "stream")
            if topic == STREAMING_FAILED:
                call.errors = [*call.errors, f"stream failed: {payload.get('failure_reason')}"][
                    -MAX_ERRORS:
                ]
        return call

    def _analytics(self, ccid: str, event: dict[str, Any]) -> Call | None:
        call = self._call(ccid)
        end, at = event.get("end"), parse_time(event.get("at"))
        if not isinstance(end, int | float) or end < call.media_seconds:
            return call  # an older window than the one shown
        call.media_seconds = float(end)
        if at is not None:
            # Published just after its window ended: the earliest estimate is the closest.
            origin = at - timedelta(seconds=end)
            if call.origin is None or origin < call.origin:
                call.origin = origin
        call.levels = {
            leg: {
                key: (event.get(leg) or {}).get(key)
                for key in ("rms_dbfs", "peak_dbfs", "voice_active", "talk_total")
            }
            for leg in LEGS
        }
        call.overtalk = float(event.get("overtalk") or 0) > 0
        call.overtalk_total = float(event.get("overtalk_total") or 0)
        return call

    def _call(self, ccid: str) -> Call:
        found = self.get(ccid)
        if found is None:
            found = self.active[ccid] = Call(ccid)
        return found

    def _end(self, call: Call, at: datetime | None) -> None:
        call.ended_at = call.ended_at or at or datetime.now(UTC)
        self.active.pop(call.call_control_id, None)
        self.recent[call.call_control_id] = call
        self.recent.move_to_end(call.call_control_id)
        while len(self.recent) > self._recent_max:
            self.recent.popitem(last=False)


def _add(kinds: list[str], kind: object) -> None:
    if isinstance(kind, str) and kind not in kinds:
        kinds.append(kind)
