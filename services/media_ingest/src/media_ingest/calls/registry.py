"""The active calls of this instance: each one's recording ticked about once a second, its sidecar
kept current, its completed event built when it ends.

The sidecar is rewritten whole on the tick after the codec, the media kinds or the pauses change,
and every ``SIDECAR_SECONDS`` for the statistics (see ``recording.sidecar``).
"""

import logging
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from media_ingest.calls.call import LEGS, Call
from media_ingest.calls.outputs import MediaOutputs
from media_ingest.events import ErrorReporter
from media_ingest.metrics import LEG_COUNTERS
from media_ingest.protocol.codecs import PayloadTypes
from media_ingest.protocol.rtp import Track
from media_ingest.recording.call_recording import CallRecording
from media_ingest.recording.files import spool_path, url_path
from media_ingest.recording.sidecar import SidecarWriter
from voicetap_sdk.media_events import LegStatistics, RecordingCompleted

log = logging.getLogger("voicetap.media_ingest.calls")

SIDECAR_SECONDS = 5.0  # the statistics a recovered recording announces are at most this old
_LIVE_COUNTERS = LEG_COUNTERS[:7]  # the jitter buffer's; malformed and foreign are the sockets'


class CallRegistry:
    def __init__(
        self,
        data_dir: Path,
        *,
        instance: str,
        outputs: MediaOutputs,
        errors: ErrorReporter,
        payload_types: PayloadTypes,
        sample_rate: int,
        jitter_ms: int,
        interval: float,
    ) -> None:
        self.instance = instance
        self._data_dir = data_dir
        self._outputs = outputs
        self._errors = errors
        self._payload_types = payload_types
        self._rate = sample_rate
        self._jitter = jitter_ms / 1000
        self._interval = interval
        self._calls: dict[str, Call] = {}
        self._retired: dict[str, dict[str, int]] = {leg: {} for leg in LEGS}

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_control_id: str) -> bool:
        return call_control_id in self._calls

    def get(self, call_control_id: str) -> Call | None:
        return self._calls.get(call_control_id)

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def open(self, call_control_id: str) -> Call:
        """The call's record, created (with its WAV and sidecar) when it is new here."""
        call = self._calls.get(call_control_id)
        if call is not None:
            return call
        now = time.monotonic()
        path = spool_path(self._data_dir, call_control_id)
        recording = CallRecording(
            path,
            origin=now,
            sample_rate=self._rate,
            payload_types=self._payload_types,
            jitter_depth=self._jitter,
            on_unsupported=partial(self._unsupported_codec, call_control_id),
        )
        call = Call(
            call_control_id,
            recording,
            path,
            origin=now,
            last_media=now,
            next_tick=now + self._interval,
            sidecar=SidecarWriter(path),
        )
        self._save(call, now)
        self._calls[call_control_id] = call
        log.info("recording started", extra={"call_control_id": call_control_id, "path": str(path)})
        return call

    def tick_due(self, now: float) -> None:
        """Tick every call whose period is over: write its audio, publish analytics and audio."""
        for call in list(self._calls.values()):
            if call.next_tick <= now:
                call.next_tick = max(call.next_tick + self._interval, now)
                self._tick(call, now)

    def _tick(self, call: Call, now: float) -> None:
        try:
            frames, windows = call.recording.tick(now)
        except Exception:  # noqa: BLE001 - one call's failure never stops the others
            log.exception("recording tick failed", extra={"call_control_id": call.call_control_id})
            return
        self._outputs.publish(call, frames, windows)
        if now >= call.save_due or call.facts_key() != call.saved:
            try:
                self._save(call, now)
            except OSError as exc:
                log.warning(
                    "could not save the recording's sidecar",
                    extra={"call_control_id": call.call_control_id, "error": str(exc)},
                )

    def _save(self, call: Call, now: float) -> None:
        call.saved, call.save_due = call.facts_key(), now + SIDECAR_SECONDS
        legs: dict[str, dict[str, Any]] = {leg: call.leg_statistics(leg) for leg in LEGS}
        call.sidecar.write(
            {
                "call_control_id": call.call_control_id,
                "instance": self.instance,
                "started_at": call.started_at,
                "codec": _codec(legs),
                "legs": legs,
                "paused": call.paused_so_far(),
                "media": call.media_kinds(),
            }
        )

    def _unsupported_codec(
        self, call_control_id: str, track: Track, payload_type: int, detail: str
    ) -> None:
        """A leg's first packet of a payload type no decoder takes (the rest are only counted)."""
        self._errors(
            call_control_id,
            "unsupported_codec",
            f"{track} leg: {detail}",
            leg=track,
            payload_type=payload_type,
        )

    def discard(self, call: Call) -> None:
        """Forget a call whose media never started: its files go too."""
        self.drop(call)
        call.path.unlink(missing_ok=True)
        call.sidecar.remove()

    def drop(self, call: Call) -> None:
        """Forget a call at once (erased): no more ticks, no completed event; its files stay for
        whoever deletes them (``recording.deletion``)."""
        self._calls.pop(call.call_control_id, None)
        call.end()

    def finish(self, call: Call, reason: str) -> RecordingCompleted:
        """End the call's recording (``call.end()`` done): the rest of the audio written, its
        summary as the event (its sidecar stays until the event is spooled beside the file)."""
        self._calls.pop(call.call_control_id, None)
        if call.stopped_at is not None:  # stopped and never resumed: paused up to the end
            call.recording.pause(call.stopped_at)
        summary = call.recording.finish(time.monotonic())
        self._outputs.publish(call, np.zeros((0, 2), np.int16), summary["windows"])
        legs: dict[str, dict[str, Any]] = {}
        for leg in LEGS:
            legs[leg] = stats = call.leg_statistics(leg)
            for name in LEG_COUNTERS:
                self._retired[leg][name] = self._retired[leg].get(name, 0) + int(stats.get(name, 0))
        log.info(
            "recording completed",
            extra={
                "call_control_id": call.call_control_id,
                "reason": reason,
                "duration": summary["duration"],
            },
        )
        return RecordingCompleted(
            id=f"recording:{call.call_control_id}",
            call_control_id=call.call_control_id,
            path=str(call.path.resolve()),
            url_path=url_path(call.call_control_id),
            instance=self.instance,
            duration=summary["duration"],
            codec=_codec(legs),
            sample_rate=summary["sample_rate"],
            channels=summary["channels"],
            paused=summary["paused"],
            legs={leg: LegStatistics(**stats) for leg, stats in legs.items()},
            analytics=summary["analytics"],
            media=call.media_kinds(),
            reason=reason,
        )

    def leg_counts(self) -> Iterator[tuple[str, dict[str, int], float | None]]:
        """Counters of every leg (retired calls' totals first), with each live leg's jitter in seconds."""
        for leg in LEGS:
            yield leg, self._retired[leg], None
        for call in list(self._calls.values()):
            for leg in LEGS:
                stats = call.recording.leg(leg).stats
                counts = {name: getattr(stats, name) for name in _LIVE_COUNTERS}
                counts.update(call.socket_counts(leg))
                yield leg, counts, (stats.jitter_ms / 1000 if stats.received else None)


def _codec(legs: dict[str, dict[str, Any]]) -> str | None:
    """The event's codec: the inbound leg's, else the outbound leg's, None before any media."""
    codec = legs["inbound"]["codec"] or legs["outbound"]["codec"]
    return str(codec) if codec else None
