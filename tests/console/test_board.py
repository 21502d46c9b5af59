"""The board folds call events in any order: pure code, no server."""

from datetime import UTC, datetime, timedelta
from typing import Any

from voicetap_console.board import Board
from voicetap_sdk.topics import (
    CALL_ANSWERED,
    CALL_FORK_STARTED,
    CALL_HANGUP,
    CALL_INITIATED,
    MEDIA_ANALYTICS,
    MEDIA_ERROR,
    RECORDING_COMPLETED,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def webhook(event_type: str, ccid: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "data": {
            "id": f"{event_type}-{ccid}",
            "event_type": event_type,
            "occurred_at": at.isoformat(),
            "payload": {"call_control_id": ccid, **payload},
        }
    }


def analytics(ccid: str, end: float, at: datetime, inbound_db: float, both: bool) -> dict[str, Any]:
    def leg(db: float, active: bool) -> dict[str, Any]:
        return {"rms_dbfs": db, "peak_dbfs": db + 6, "talk": 1.0 if active else 0.0,
                "silence": 0.0 if active else 1.0, "voice_active": active, "talk_total": end}  # fmt: skip

    return {
        "id": f"analytics:{ccid}:{end - 1}", "call_control_id": ccid, "start": end - 1, "end": end,
        "overtalk": 1.0 if both else 0.0, "overtalk_total": 1.0 if both else 0.0,
        "inbound": leg(inbound_db, True), "outbound": leg(-30.0, both), "at": at.isoformat(),
    }  # fmt: skip


def test_a_call_goes_from_ringing_to_active_to_recent() -> None:
    board = Board(recent=10)
    board.apply(
        CALL_INITIATED,
        webhook("call.initiated", "c1", T0, **{"from": "+1", "to": "+2", "direction": "incoming"}),
    )
    assert board.snapshot()["active"][0]["state"] == "ringing"
    board.apply(CALL_ANSWERED, webhook("call.answered", "c1", T0 + timedelta(seconds=2)))
    board.apply(CALL_FORK_STARTED, webhook("call.fork.started", "c1", T0 + timedelta(seconds=3)))
    call = board.apply(
        MEDIA_ANALYTICS, analytics("c1", 1.0, T0 + timedelta(seconds=4.1), -20.0, True)
    )
    assert call is not None
    shown = call.as_json()
    assert (shown["state"], shown["from"], shown["direction"], shown["media"]) == (
        "active",
        "+1",
        "incoming",
        ["fork"],
    )
    assert shown["levels"]["inbound"]["rms_dbfs"] == -20.0
    assert shown["overtalk"] is True
    assert shown["origin"] == (T0 + timedelta(seconds=3.1)).isoformat()
    board.apply(
        CALL_HANGUP,
        webhook("call.hangup", "c1", T0 + timedelta(seconds=30), hangup_cause="normal_clearing"),
    )
    snap = board.snapshot()
    assert snap["active"] == []
    assert [c["state"] for c in snap["recent"]] == ["ended"]
    assert snap["recent"][0]["hangup_cause"] == "normal_clearing"


def test_events_out_of_order_never_bring_a_call_back() -> None:
    board = Board(recent=10)
    board.apply(CALL_HANGUP, webhook("call.hangup", "c1", T0 + timedelta(seconds=9)))
    board.apply(
        CALL_ANSWERED, webhook("call.answered", "c1", T0 + timedelta(seconds=1), **{"from": "+1"})
    )
    board.apply(CALL_INITIATED, webhook("call.initiated", "c1", T0))
    snap = board.snapshot()
    assert snap["active"] == []
    only = snap["recent"][0]
    assert (only["state"], only["from"], only["initiated_at"]) == ("ended", "+1", T0.isoformat())


def test_an_older_analytics_window_does_not_replace_a_newer_one() -> None:
    board = Board(recent=10)
    board.apply(MEDIA_ANALYTICS, analytics("c1", 5.0, T0 + timedelta(seconds=5), -10.0, False))
    board.apply(MEDIA_ANALYTICS, analytics("c1", 4.0, T0 + timedelta(seconds=4), -50.0, False))
    call = board.get("c1")
    assert call is not None and call.levels is not None
    assert call.levels["inbound"]["rms_dbfs"] == -10.0


def test_recording_gives_health_and_ends_a_call_the_board_never_saw() -> None:
    board = Board(recent=10)
    legs = {
        leg: {"received": 990, "lost": 10, "duplicated": 0, "reordered": 0, "jitter": 8.0,
              "jitter_ms": 1.0, "codec": "PCMU", "sample_rate": 8000}
        for leg in ("inbound", "outbound")
    }  # fmt: skip
    board.apply(RECORDING_COMPLETED, {
        "id": "recording:c9", "call_control_id": "c9", "duration": 10.0, "legs": legs,
        "media": ["stream"], "completed_at": (T0 + timedelta(seconds=10)).isoformat(),
    })  # fmt: skip
    snap = board.snapshot()
    assert snap["active"] == []
    shown = snap["recent"][0]
    assert shown["health"]["inbound"] == {"loss_pct": 1.0, "jitter_ms": 1.0, "codec": "PCMU"}
    assert shown["media"] == ["stream"]
    assert shown["origin"] == T0.isoformat()


def test_media_errors_are_kept_bounded_and_recent_calls_too() -> None:
    board = Board(recent=3)
    for n in range(8):
        board.apply(
            MEDIA_ERROR,
            {"id": f"e{n}", "call_control_id": "c1", "kind": "internal", "detail": str(n)},
        )
    call = board.get("c1")
    assert call is not None and call.errors == [f"internal: {n}" for n in range(3, 8)]
    for n in range(5):
        board.apply(CALL_HANGUP, webhook("call.hangup", f"h{n}", T0))
    assert [c["call_control_id"] for c in board.snapshot()["recent"]] == ["h4", "h3", "h2"]


def test_events_without_a_call_are_ignored() -> None:
    board = Board(recent=3)
    assert board.apply(CALL_INITIATED, {"data": {"payload": {}}}) is None
    assert board.apply(MEDIA_ANALYTICS, {"call_control_id": ""}) is None
    assert board.snapshot() == {"active": [], "recent": []}
