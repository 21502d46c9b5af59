"""The active calls of this instance: one :class:`CallRecording` per call, ticked about once a second.

A call lives here from the moment its media is set up (fork ports allocated, or a media-stream
WebSocket accepted) until it ends (hang-up, media silent past the timeout, a stopped fork never
resumed). Forks stopped and started again, and switches between fork and stream, all feed the
same recording, so a call has exactly one WAV file, aligned to wall-clock time.

While a call records, a sidecar ``<name>.json`` beside its WAV names the instance writing it and
keeps what the completed event would say that the WAV cannot: codec, per-leg statistics, paused
intervals, media kinds. It is rewritten whole (never half old, half new) on the tick after the
codec, the media kinds or the pauses change, and every ``SIDECAR_SECONDS`` for the statistics. A
sidecar left behind means the instance died mid-call: :func:`find_orphans` hands its WAV to
``repair_wav`` (see ``control``) and :func:`recovered_recording` announces it with the facts last
saved.
"""

import base64
import json
import logging
import mmap
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from media_ingest.codecs import CodecSpec, PayloadTypes
from media_ingest.events import EventPublisher, publish_error
from media_ingest.ports import Allocation
from media_ingest.recording import CallRecording
from media_ingest.rtp import Track
from media_ingest.udp import RtpReceiver
from voicetap_common import codec
from voicetap_common.media_events import (
    MEDIA_ANALYTICS,
    MEDIA_AUDIO,
    LegLevels,
    LegStatistics,
    MediaAnalytics,
    MediaAudio,
    RecordingCompleted,
)

log = logging.getLogger("voicetap.media_ingest.calls")

MediaKind = Literal["fork", "stream"]
_LEGS: tuple[Track, ...] = ("inbound", "outbound")
_FRAME_SECONDS = 0.020  # CallAnalytics' frame
SIDECAR_SECONDS = 5.0  # the statistics a recovered recording announces are at most this old
_SAFE = re.compile(r"[^A-Za-z0-9_.:=-]")


def file_stem(call_control_id: str) -> str:
    """A file name for a call id: Telnyx ids are URL-safe, anything else is escaped (never a path)."""
    stem = _SAFE.sub(lambda m: f"%{ord(m.group()):02X}", call_control_id)
    return stem if not stem.startswith(".") else "%2E" + stem[1:]


def recording_path(data_dir: Path, call_control_id: str) -> Path:
    return data_dir / "recordings" / f"{file_stem(call_control_id)}.wav"


def url_path(call_control_id: str) -> str:
    return f"/calls/{call_control_id}/recording.wav"


class PayloadTable(PayloadTypes):
    """RTP payload types, plus private numbers (128 and up, never on the wire) for the formats of
    WebSocket media, which has no payload type, so that the same receivers decode both."""

    def __init__(self, dynamic: dict[int, CodecSpec] | None = None) -> None:
        super().__init__(dynamic)
        self._private: dict[CodecSpec, int] = {}

    def private(self, spec: CodecSpec) -> int:
        pt = self._private.get(spec)
        if pt is None:
            pt = self._private[spec] = 128 + len(self._private)
            self._table[pt] = spec
        return pt


@dataclass(eq=False)
class Call:
    call_control_id: str
    recording: CallRecording
    path: Path
    origin: float  # monotonic time of the call's media start (timeline 0)
    last_media: float
    next_tick: float
    media: list[MediaKind] = field(default_factory=list)
    allocation: Allocation | None = None
    receivers: list[RtpReceiver] = field(default_factory=list)
    fork_started_wall: float = 0.0  # time.time() of the last fork_start this instance sent
    stream_started_wall: float = 0.0  # time.time() of the last streaming_start this instance sent
    fork_active: bool = False
    stream: Any = None  # the media-stream session (websocket.StreamSession) feeding the call
    stopped_at: float | None = None  # monotonic time the media was stopped (paused), if it is
    retired: dict[str, dict[str, int]] = field(
        default_factory=lambda: {leg: {"foreign": 0, "malformed": 0} for leg in _LEGS}
    )
    audio_sent: int = 0  # samples of each leg already published on the audio topic
    finished: bool = False
    started_at: float = field(default_factory=time.time)
    saved: tuple[Any, ...] = ()  # the facts_key() the sidecar was last written with
    sidecar_size: int = 0  # bytes of the sidecar (JSON padded with spaces)
    save_due: float = 0.0  # monotonic time of the next periodic sidecar write

    @property
    def paused(self) -> bool:
        return self.recording.mixer.paused

    def mark_stopped(self, now: float | None = None) -> None:
        """The call's media stopped (it is paused from then on), unless it had already."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic() if now is None else now

    def resume(self, now: float) -> None:
        self.recording.resume(now)
        self.stopped_at = None
        self.last_media = now

    def retire_receivers(self) -> None:
        """Close the UDP receivers, keeping their counts for the statistics."""
        for receiver in self.receivers:
            counts = self.retired[receiver.track]
            counts["foreign"] += receiver.foreign
            counts["malformed"] += receiver.malformed
            receiver.close()
        self.receivers.clear()

    def socket_counts(self, track: Track) -> dict[str, int]:
        counts = dict(self.retired[track])
        for receiver in self.receivers:
            if receiver.track == track:
                counts["foreign"] += receiver.foreign
                counts["malformed"] += receiver.malformed
        return counts

    def leg_statistics(self, track: Track) -> dict[str, Any]:
        stats = self.recording.leg(track).stats.to_dict()
        stats.update(self.socket_counts(track))
        return stats

    def facts_key(self) -> tuple[Any, ...]:
        """Changes whenever a fact of the sidecar other than the statistics does (cheap: every tick)."""
        recording = self.recording
        return (
            recording.inbound.stats.codec,
            recording.outbound.stats.codec,
            len(self.media),
            len(recording.mixer.paused_intervals),
            self.paused,
            self.stopped_at is not None,
        )

    def paused_so_far(self) -> list[list[float | None]]:
        """Paused intervals [start, end] in seconds, an open one (paused, or stopped and not yet
        paused, see ``finish``) with end None: it lasts until the recording ends."""
        mixer = self.recording.mixer
        intervals: list[list[float | None]] = [
            [round(a, 3), round(b, 3)] for a, b in mixer.paused_intervals
        ]
        if mixer.paused:
            intervals[-1][1] = None
        elif self.stopped_at is not None:
            intervals.append([round(max(self.stopped_at - self.origin, mixer.placed_end), 3), None])
        return intervals


class CallRegistry:
    def __init__(
        self,
        data_dir: Path,
        *,
        instance: str,
        publisher: EventPublisher,
        payload_types: PayloadTypes,
        sample_rate: int,
        jitter_ms: int,
        interval: float,
        publish_audio: bool,
    ) -> None:
        self.dir = data_dir / "recordings"
        self.instance = instance
        self._data_dir = data_dir
        self._publisher = publisher
        self._payload_types = payload_types
        self._rate = sample_rate
        self._jitter = jitter_ms / 1000
        self._interval = interval
        self._publish_audio = publish_audio
        self._calls: dict[str, Call] = {}
        self._retired: dict[str, dict[str, int]] = {leg: {} for leg in _LEGS}

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
        path = recording_path(self._data_dir, call_control_id)
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
        self._publish(call, frames, windows)
        if now >= call.save_due or call.facts_key() != call.saved:
            try:
                self._save(call, now)
            except OSError as exc:
                log.warning(
                    "could not save the recording's sidecar",
                    extra={"call_control_id": call.call_control_id, "error": str(exc)},
                )

    def _save(self, call: Call, now: float) -> None:
        """Write the call's sidecar (about 17 µs; a temporary file renamed over it costs 70-180 µs
        on ext4, whose rename starts writing the new file's blocks back)."""
        call.saved, call.save_due = call.facts_key(), now + SIDECAR_SECONDS
        legs = {leg: call.leg_statistics(leg) for leg in _LEGS}
        facts = {
            "call_control_id": call.call_control_id,
            "instance": self.instance,
            "started_at": call.started_at,
            "codec": _codec(legs),
            "legs": legs,
            "paused": call.paused_so_far(),
            "media": list(dict.fromkeys(call.media)),
        }
        data = codec.dumps(facts)
        fresh = not call.sidecar_size
        data += b" " * (
            call.sidecar_size - len(data)
        )  # never shorter than the last: no tail of it is left
        call.sidecar_size = len(data)
        _write_whole(_sidecar(call.path), data, fresh=fresh)

    def _unsupported_codec(
        self, call_control_id: str, track: Track, payload_type: int, detail: str
    ) -> None:
        """A leg's first packet of a payload type no decoder takes (the rest are only counted)."""
        publish_error(
            self._publisher,
            self.instance,
            call_control_id,
            "unsupported_codec",
            f"{track} leg: {detail}",
            leg=track,
            payload_type=payload_type,
        )

    def _publish(self, call: Call, frames: np.ndarray, windows: list[dict[str, Any]]) -> None:
        ccid = call.call_control_id
        analytics = call.recording.analytics
        for window in windows:
            legs = {}
            for index, leg in enumerate(_LEGS):
                w = window[leg]
                legs[leg] = LegLevels(
                    rms_dbfs=w["rms_dbfs"],
                    peak_dbfs=w["peak_dbfs"],
                    talk=w["talk"],
                    silence=w["silence"],
                    voice_active=w["talk"] > 0,
                    talk_total=round(int(analytics.talk_frames[index]) * _FRAME_SECONDS, 3),
                )
            event = MediaAnalytics(
                id=f"analytics:{ccid}:{window['start']}",
                call_control_id=ccid,
                start=window["start"],
                end=window["end"],
                overtalk=window["overtalk"],
                overtalk_total=round(analytics.overtalk_frames * _FRAME_SECONDS, 3),
                **legs,
            )
            self._publisher.offer(
                MEDIA_ANALYTICS, event.id, MEDIA_ANALYTICS, event, call_control_id=ccid
            )
        if self._publish_audio and len(frames):
            start = call.audio_sent
            for index, leg in enumerate(_LEGS):
                pcm = np.ascontiguousarray(frames[:, index], "<i2").tobytes()
                audio = MediaAudio(
                    id=f"audio:{ccid}:{leg}:{start}",
                    call_control_id=ccid,
                    leg=leg,
                    sample_rate=self._rate,
                    start=round(start / self._rate, 4),
                    samples=len(frames),
                    payload=base64.b64encode(pcm).decode(),
                )
                self._publisher.offer(
                    MEDIA_AUDIO, audio.id, MEDIA_AUDIO, audio, call_control_id=ccid, leg=leg
                )
            call.audio_sent += len(frames)

    def discard(self, call: Call) -> None:
        """Forget a call whose media never started: its files go too."""
        self._calls.pop(call.call_control_id, None)
        call.finished = True
        call.retire_receivers()
        call.path.unlink(missing_ok=True)
        _sidecar(call.path).unlink(missing_ok=True)

    def finish(self, call: Call, reason: str) -> RecordingCompleted:
        """End the call's recording: the rest of the audio written, its summary as the event."""
        self._calls.pop(call.call_control_id, None)
        call.finished = True
        call.retire_receivers()
        if call.stopped_at is not None:  # stopped and never resumed: paused up to the end
            call.recording.pause(call.stopped_at)
        summary = call.recording.finish(time.monotonic())
        self._publish(call, np.zeros((0, 2), np.int16), summary["windows"])
        legs = {}
        for leg in _LEGS:
            legs[leg] = stats = call.leg_statistics(leg)
            for name in (
                "received",
                "lost",
                "duplicated",
                "reordered",
                "late",
                "decode_errors",
                "unsupported",
                "malformed",
                "foreign",
            ):
                self._retired[leg][name] = self._retired[leg].get(name, 0) + int(stats.get(name, 0))
        _sidecar(call.path).unlink(missing_ok=True)
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
            media=list(dict.fromkeys(call.media)),
            reason=reason,
        )

    def leg_counts(self) -> Iterator[tuple[str, dict[str, int], float | None]]:
        """Counters of every leg (retired calls' totals first), with each live leg's jitter in seconds."""
        for leg in _LEGS:
            yield leg, self._retired[leg], None
        for call in list(self._calls.values()):
            for leg in _LEGS:
                stats = call.recording.leg(leg).stats
                counts = {
                    name: getattr(stats, name)
                    for name in (
                        "received",
                        "lost",
                        "duplicated",
                        "reordered",
                        "late",
                        "decode_errors",
                        "unsupported",
                    )
                }
                counts.update(call.socket_counts(leg))
                yield leg, counts, (stats.jitter_ms / 1000 if stats.received else None)


def _codec(legs: dict[str, dict[str, Any]]) -> str | None:
    """The event's codec: the inbound leg's, else the outbound leg's, None before any media."""
    return legs["inbound"]["codec"] or legs["outbound"]["codec"] or None


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _temporary(sidecar: Path) -> Path:
    return sidecar.with_suffix(".json.tmp")


def _write_whole(path: Path, data: bytes, *, fresh: bool) -> None:
    """Write ``data`` over the start of ``path`` so that a process killed meanwhile leaves the old
    content or the new, never a mix (no fsync: it has to survive the process, not the machine).

    Up to a page, one ``pwrite`` at offset 0 does: Linux copies a buffered write page by page and
    gives up on a fatal signal only between pages. Beyond (a call paused hundreds of times), a
    temporary file is renamed over it. ``fresh`` truncates whatever an earlier life left there."""
    if len(data) > mmap.PAGESIZE:
        temporary = _temporary(path)
        temporary.write_bytes(data)
        temporary.replace(path)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Orphan:
    call_control_id: str
    instance: str
    wav: Path
    sidecar: Path
    facts: dict[str, Any] = field(default_factory=dict)  # the sidecar as last saved

    def remove_sidecar(self) -> None:
        self.sidecar.unlink(missing_ok=True)
        _temporary(self.sidecar).unlink(missing_ok=True)  # a write the crash interrupted


def find_orphans(data_dir: Path) -> list[Orphan]:
    """Recordings whose sidecar is still there: written by an instance that may have died."""
    found = []
    directory = data_dir / "recordings"
    if not directory.is_dir():
        return found
    for sidecar in directory.glob("*.json"):
        try:
            meta = json.loads(sidecar.read_text())
            found.append(
                Orphan(
                    str(meta["call_control_id"]),
                    str(meta["instance"]),
                    sidecar.with_suffix(".wav"),
                    sidecar,
                    meta,
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable recording sidecar", extra={"path": str(sidecar)})
    return found


def recovered_recording(
    orphan: Orphan, *, instance: str, frames: int, sample_rate: int
) -> RecordingCompleted:
    """The completed event of a repaired recording, with the facts its sidecar last saved (pauses
    cut at the repaired file's end; an open one lasts until it)."""
    duration = round(frames / sample_rate, 3)
    known: dict[str, Any] = dict(
        id=f"recording:{orphan.call_control_id}",
        call_control_id=orphan.call_control_id,
        path=str(orphan.wav.resolve()),
        url_path=url_path(orphan.call_control_id),
        instance=instance,
        duration=duration,
        sample_rate=sample_rate,
        reason="recovered",
        recovered=True,
    )
    facts = orphan.facts
    try:
        paused = [
            [start, duration if end is None else min(end, duration)]
            for start, end in facts.get("paused", [])
            if start < duration
        ]
        return RecordingCompleted(
            **known,
            codec=facts.get("codec"),
            legs=facts.get("legs"),
            paused=paused,
            media=facts.get("media", []),
        )
    except (TypeError, ValueError):  # a sidecar of another version: the file is still announced
        log.warning(
            "recording sidecar facts unreadable, recovered without them",
            extra={"path": str(orphan.sidecar)},
        )
        return RecordingCompleted(**known, codec=None)
