"""One call held by this instance, and the only code that changes its media state.

A call lives from the moment its media is set up (fork ports allocated, or a media-stream
WebSocket accepted) until it ends. Forks stopped and started again, and switches between fork and
stream, all feed the same recording. Its transitions, each written once:

- :meth:`Call.attach_fork` / :meth:`Call.detach_fork`: RTP forked to its port pair, or no longer
  (the pair is handed back to be released by the caller, awaited);
- :meth:`Call.attach_stream` / :meth:`Call.stream_ended` / :meth:`Call.stream_failed`: a
  media-stream WebSocket feeds it, or stopped;
- :meth:`Call.pause` (media stopped: the rest is silent until it resumes) and the resume that
  attaching media does;
- :meth:`Call.end`: the call is over (its recording is completed by the registry).

A call picked up where an earlier process left it (restart in place, takeover: ``media_ingest.
resumption``, ``media_ingest.takeover``) carries that process's statistics (``prior_legs``), the
gap no one recorded (``gaps``, closed by the first audio placed afterwards) and, after a
takeover, the earlier instances' parts.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from media_ingest.ports import Allocation
from media_ingest.protocol.rtp import Track
from media_ingest.recording.call_recording import CallRecording
from media_ingest.recording.sidecar import SidecarWriter

MediaKind = Literal["fork", "stream"]
LEGS: tuple[Track, ...] = ("inbound", "outbound")
_ADDED = frozenset(  # counters an earlier process's statistics add to
    ("received", "lost", "duplicated", "reordered", "late", "discarded", "malformed", "foreign")
    + ("ssrc_changes", "restarts", "resyncs", "unsupported", "decode_errors", "late_samples")
)


class Receiver(Protocol):
    """A UDP receiver of the call's fork (``transports.udp.RtpReceiver``)."""

    @property
    def track(self) -> Track: ...
    @property
    def foreign(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    def close(self) -> None: ...


class MediaStream(Protocol):
    """The media-stream session feeding the call (``transports.stream_session.StreamSession``)."""

    @property
    def stream_id(self) -> str | None: ...
    @property
    def superseded(self) -> bool: ...
    def replaced(self) -> None: ...
    def close(self) -> None: ...


@dataclass(eq=False)
class Call:
    call_control_id: str
    recording: CallRecording
    path: Path
    origin: float  # monotonic time of the call's media start (timeline 0)
    last_media: float
    next_tick: float
    sidecar: SidecarWriter
    media: list[MediaKind] = field(default_factory=list)
    allocation: Allocation | None = None
    receivers: list[Receiver] = field(default_factory=list)
    fork_started_wall: float = 0.0  # time.time() of the last fork_start this instance sent
    stream_started_wall: float = 0.0  # time.time() of the last streaming_start this instance sent
    fork_active: bool = False
    stream: MediaStream | None = None
    stopped_at: float | None = None  # monotonic time the media was stopped (paused), if it is
    retired: dict[str, dict[str, int]] = field(
        default_factory=lambda: {leg: {"foreign": 0, "malformed": 0} for leg in LEGS}
    )
    audio_sent: int = 0  # samples of each leg already published on the audio topic
    finished: bool = False
    started_at: float = field(default_factory=time.time)
    saved: tuple[Any, ...] = ()  # the facts_key() the sidecar was last written with
    save_due: float = 0.0  # monotonic time of the next periodic sidecar write
    part: int = 1  # 1 unless this instance took the call over from another
    file_start: float = 0.0  # seconds on the call timeline of the file's first frame
    earlier_parts: list[dict[str, Any]] = field(default_factory=list)  # RecordingPart fields
    gaps: list[dict[str, Any]] = field(default_factory=list)  # RecordingGap fields, end None: open
    prior_legs: dict[str, dict[str, Any]] = field(default_factory=dict)  # an earlier process's

    @property
    def paused(self) -> bool:
        return self.recording.mixer.paused

    # -- transitions ---------------------------------------------------------------------------
    def touch(self, now: float) -> None:
        """Media arrived (the transports' activity callback)."""
        self.last_media = now

    def pause(self, now: float | None = None) -> None:
        """The call's media stopped (it is paused from then on), unless it had already."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic() if now is None else now

    def _resume(self, now: float, kind: MediaKind) -> None:
        """Media (again): a pause ends here, its interval recorded from when the media stopped."""
        if self.stopped_at is not None:
            self.recording.pause(self.stopped_at)
            self.recording.resume(now)
            self.stopped_at = None
        self.last_media = now
        self.media.append(kind)

    def attach_fork(
        self,
        now: float,
        *,
        ports: tuple[Allocation, Sequence[Receiver]] | None = None,
        wall: float | None = None,
    ) -> None:
        """RTP is forked here from now on (``ports``: a freshly allocated pair and its receivers)."""
        if ports is not None:
            self.allocation, self.receivers = ports[0], list(ports[1])
        self._resume(now, "fork")
        self.fork_started_wall = time.time() if wall is None else wall
        self.fork_active = True

    def detach_fork(self) -> Allocation | None:
        """The fork stopped (or was replaced): receivers retired, the port pair handed back for the
        caller to release."""
        self.fork_active = False
        self._retire_receivers()
        allocation, self.allocation = self.allocation, None
        return allocation

    def attach_stream(self, stream: MediaStream, now: float) -> None:
        """A media stream feeds the call from now on (one that fed it before is replaced)."""
        self._resume(now, "stream")
        if self.stream is not None:
            self.stream.replaced()
        self.stream = stream

    def stream_ended(self, stream: MediaStream) -> None:
        """The stream's socket closed: the call is paused unless something else feeds it."""
        if self.stream is stream:
            self.stream = None
            if not self.finished and not self.fork_active and not stream.superseded:
                self.pause()

    def stream_failed(self) -> None:
        """Telnyx lost the call's stream: its socket is closed from our side, the call paused."""
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close()
        self.pause()

    def end(self) -> Allocation | None:
        """The call is over: no more media; the port pair handed back to be released."""
        self.finished = True
        self._retire_receivers()
        allocation, self.allocation = self.allocation, None
        return allocation

    def _retire_receivers(self) -> None:
        """Close the UDP receivers, keeping their counts for the statistics."""
        for receiver in self.receivers:
            counts = self.retired[receiver.track]
            counts["foreign"] += receiver.foreign
            counts["malformed"] += receiver.malformed
            receiver.close()
        self.receivers.clear()

    # -- what the sidecar and the events say -----------------------------------------------------
    def socket_counts(self, track: Track) -> dict[str, int]:
        counts = dict(self.retired[track])
        for receiver in self.receivers:
            if receiver.track == track:
                counts["foreign"] += receiver.foreign
                counts["malformed"] += receiver.malformed
        return counts

    def leg_statistics(self, track: Track) -> dict[str, Any]:
        """The leg's statistics over the whole call: an earlier process's counts added in."""
        stats = self.recording.leg(track).stats.to_dict()
        stats.update(self.socket_counts(track))
        prior = self.prior_legs.get(track)
        if prior:
            for name, value in prior.items():
                if name in _ADDED and isinstance(value, int):
                    stats[name] += value
            if not stats["codec"]:
                stats["codec"], stats["sample_rate"] = (
                    prior.get("codec", ""),
                    prior.get("sample_rate", 0),
                )
        return stats

    def close_gap(self, end: float | None = None) -> None:
        """An open gap ends where audio came again (at ``end`` if none did and the call ends)."""
        if not self.gaps or self.gaps[-1]["end"] is not None:
            return
        first = self.recording.mixer.first_placed
        if first is None and end is None:
            return
        gap = self.gaps[-1]
        gap["end"] = round(max(gap["start"], first if first is not None else end or 0.0), 3)

    def facts_key(self) -> tuple[Any, ...]:
        """Changes whenever a fact of the sidecar other than the statistics does (cheap: every tick)."""
        recording = self.recording
        return (
            recording.inbound.stats.codec,
            recording.outbound.stats.codec,
            len(self.media),
            self.live_media(),
            len(self.gaps),
            self.gaps[-1]["end"] if self.gaps else None,
            len(recording.mixer.paused_intervals),
            self.paused,
            self.stopped_at is not None,
        )

    def paused_so_far(self) -> list[list[float | None]]:
        """Paused intervals [start, end] in seconds, an open one (paused, or stopped and not yet
        paused, see ``CallRegistry.finish``) with end None: it lasts until the recording ends."""
        mixer = self.recording.mixer
        intervals: list[list[float | None]] = [
            [round(a, 3), round(b, 3)] for a, b in mixer.paused_intervals
        ]
        if mixer.paused:
            intervals[-1][1] = None
        elif self.stopped_at is not None:
            intervals.append([round(max(self.stopped_at - self.origin, mixer.placed_end), 3), None])
        return intervals

    def live_media(self) -> MediaKind | None:
        """The media feeding the call (or asked for and not yet connected); None while paused."""
        if self.fork_active:
            return "fork"
        if self.stream is not None or (self.stopped_at is None and self.stream_started_wall > 0):
            return "stream"
        return None

    def media_kinds(self) -> list[str]:
        """Each kind of media that fed the call, once, in order."""
        return [kind for kind in dict.fromkeys(self.media)]
