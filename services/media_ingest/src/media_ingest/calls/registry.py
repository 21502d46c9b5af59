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
from media_ingest.protocol.wav import read_header
from media_ingest.recording.call_recording import CallRecording
from media_ingest.recording.files import part_path, spool_path, url_path
from media_ingest.recording.sidecar import SidecarWriter
from voicetap_sdk.media_events import (
    LegStatistics,
    RecordingCompleted,
    RecordingGap,
    RecordingPart,
)

log = logging.getLogger("voicetap.media_ingest.calls")

SIDECAR_SECONDS = 5.0  # the statistics a recovered recording announces are at most this old
# Audio reaches the file at least this often, this far behind real time: a process killed -9 loses
# at most their sum (1 s) of what it had received. The holdback matches how far the jitter buffer
# lets a leg's timeline lag its arrivals before re-anchoring it (0.5 s); ticking twice a second
# costs about 0.06 ms of CPU per call-second more than once (6%).
WRITE_SECONDS = 0.5
HOLDBACK_SECONDS = 0.5
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
        self._interval = min(interval, WRITE_SECONDS)
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
        call = self._add(call_control_id, spool_path(self._data_dir, call_control_id))
        log.info(
            "recording started", extra={"call_control_id": call_control_id, "path": str(call.path)}
        )
        return call

    def resume(self, call_control_id: str, wav: Path, facts: dict[str, Any]) -> Call:
        """A call an earlier process of this instance recorded up to the end of ``wav`` (repaired):
        the recording goes on in the same file, aligned to the call's wall clock, the downtime a
        gap (closed by the first audio that comes again)."""
        header = read_header(wav)
        file_start = float(facts.get("start", 0.0))
        closed_pauses = [(a, b) for a, b in facts.get("paused", []) if b is not None]
        call = self._add(
            call_control_id,
            wav,
            started_at=float(facts["started_at"]),
            start=file_start + header.data_size / header.block / self._rate,
            file_start=file_start,
            paused=closed_pauses,
            append=True,
            part=int(facts.get("part", 1)),
            earlier_parts=list(facts.get("parts", [])),
            gaps=[gap for gap in facts.get("gaps", []) if gap.get("end") is not None],
            prior_legs=dict(facts.get("legs", {})),
            media=list(facts.get("media", [])),
        )
        unfinished = [gap for gap in facts.get("gaps", []) if gap.get("end") is None]
        start = unfinished[0]["start"] if unfinished else round(call.recording.mixer.position, 3)
        call.gaps.append({"start": start, "end": None, "reason": "worker_restart"})
        if facts.get("live") == "fork":  # the same RTP streams go on: placed by their timestamps
            for leg in LEGS:
                saved = (facts.get("timeline") or {}).get(leg)
                if saved:
                    call.recording.leg(leg).jitter.continue_timeline(saved, time.monotonic())
        open_pause = [a for a, b in facts.get("paused", []) if b is None]
        if open_pause:  # stopped before the crash: paused from then on, until media resumes
            call.stopped_at = call.origin + open_pause[0]
        self._save(call, time.monotonic())  # with the pause and the gap: killed again at once
        return call

    def take_over(
        self,
        call_control_id: str,
        *,
        started_at: float,
        part: int,
        earlier_parts: list[dict[str, Any]],
        gap_start: float,
    ) -> Call:
        """Part ``part`` of a call another instance recorded until it died: a file of its own,
        starting where the call is now (the parts are joined when it ends)."""
        start = max(time.time() - started_at, gap_start)
        call = self._add(
            call_control_id,
            part_path(self._data_dir, call_control_id, part),
            started_at=started_at,
            start=start,
            file_start=round(start, 3),
            part=part,
            earlier_parts=earlier_parts,
            gaps=[{"start": round(gap_start, 3), "end": None, "reason": "takeover"}],
        )
        log.info(
            "recording taken over",
            extra={"call_control_id": call_control_id, "part": part, "path": str(call.path)},
        )
        return call

    def _add(
        self,
        call_control_id: str,
        path: Path,
        *,
        started_at: float | None = None,
        start: float = 0.0,
        paused: list[tuple[float, float]] | None = None,
        append: bool = False,
        **known: Any,
    ) -> Call:
        now = time.monotonic()
        wall = time.time()
        origin = now if started_at is None else now - (wall - started_at)
        recording = CallRecording(
            path,
            origin=origin,
            sample_rate=self._rate,
            payload_types=self._payload_types,
            jitter_depth=self._jitter,
            on_unsupported=partial(self._unsupported_codec, call_control_id),
            holdback=HOLDBACK_SECONDS,
            start=start,
            paused=paused or (),
            append=append,
        )
        call = Call(
            call_control_id,
            recording,
            path,
            origin=origin,
            last_media=now,
            next_tick=now + self._interval,
            sidecar=SidecarWriter(path),
            started_at=wall if started_at is None else started_at,
            **known,
        )
        self._save(call, now)
        self._calls[call_control_id] = call
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
        call.close_gap()
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
        live = call.live_media()
        pair = call.allocation.pair if live == "fork" and call.allocation is not None else None
        call.sidecar.write(
            {
                "call_control_id": call.call_control_id,
                "instance": self.instance,
                "started_at": call.started_at,
                "codec": _codec(legs),
                "legs": legs,
                "paused": call.paused_so_far(),
                "media": call.media_kinds(),
                # what a restart in place needs to pick the call up again
                "start": call.file_start,
                "live": live,
                "fork": [pair.rx, pair.tx] if pair is not None else None,
                "timeline": {leg: call.recording.leg(leg).jitter.timeline() for leg in LEGS},
                "part": call.part,
                "parts": call.earlier_parts,
                "gaps": call.gaps,
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
        call.close_gap(summary["duration"])
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
            gaps=[RecordingGap(**gap) for gap in call.gaps],
            parts=_parts(call, self.instance, summary["duration"]),
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


def _parts(call: Call, instance: str, end: float) -> list[RecordingPart]:
    """Each instance's share of a call taken over (empty for one recorded in one place): the
    earlier ones not joined yet (the uploads join what they can reach)."""
    if call.part == 1:
        return []
    earlier = [RecordingPart(**{**part, "joined": False}) for part in call.earlier_parts]
    own = RecordingPart(
        part=call.part, instance=instance, start=call.file_start, end=end, joined=True
    )
    return [*earlier, own]


def _codec(legs: dict[str, dict[str, Any]]) -> str | None:
    """The event's codec: the inbound leg's, else the outbound leg's, None before any media."""
    codec = legs["inbound"]["codec"] or legs["outbound"]["codec"]
    return str(codec) if codec else None
