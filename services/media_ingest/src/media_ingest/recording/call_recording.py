"""A call's media, pure: packets of two legs in, a stereo WAV, statistics and analytics out.

The I/O glue owns sockets and clocks and calls, for each call:

- ``recording.leg("inbound" | "outbound").push(parse_rtp(datagram), now)`` per packet;
- ``recording.tick(now)`` on a timer (about once a second): gives up on lost packets, mixes
  what is older than ``holdback``, appends it to the WAV file, returns the new stereo frames
  and the analytics windows;
- ``recording.pause(now)`` / ``resume(now)`` on user request;
- ``recording.finish(now)`` once: the rest of the audio and the summary for the event.

A payload type no decoder takes is reported through ``on_unsupported(track, payload_type,
detail)`` on its first packet of each leg; its packets are counted in the leg's ``unsupported``.

All times are one monotonic clock in seconds; ``origin`` is the call's media start on it. A
recording that goes on where an earlier process left it (restart in place, takeover) starts its
timeline at ``start`` seconds: nothing before is produced, and with ``append`` the WAV file there
(repaired) is continued.
"""

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from media_ingest.protocol.amrwb import AmrWbMode
from media_ingest.protocol.analytics import CallAnalytics
from media_ingest.protocol.codecs import (
    CodecError,
    CodecSpec,
    Decoder,
    G711Decoder,
    PayloadTypes,
    Resampler,
    UnsupportedCodec,
    make_decoder,
)
from media_ingest.protocol.jitter import JitterBuffer
from media_ingest.protocol.mixer import LegTimeline, StereoMixer
from media_ingest.protocol.rtp import RtpPacket, Track
from media_ingest.protocol.stats import LegStats
from media_ingest.protocol.wav import WavWriter


class LegReceiver:
    """One leg: packets are reordered, decoded, brought to the recording rate and placed.

    ``codec`` fixes the format of every packet (WebSocket media, where there is no payload type:
    build ``RtpPacket`` objects from ``chunk`` and ``timestamp``); otherwise the payload type of
    each packet picks it from ``payload_types``, and ``on_unsupported(payload_type, detail)`` hears
    of the first packet of each payload type it has no codec for.
    """

    def __init__(
        self,
        timeline: LegTimeline,
        sample_rate: int,
        *,
        origin: float,
        payload_types: PayloadTypes,
        codec: CodecSpec | None = None,
        jitter_depth: float = 0.060,
        amrwb_mode: AmrWbMode = "auto",
        on_unsupported: Callable[[int, str], None] | None = None,
    ) -> None:
        self._stats = LegStats()
        self.jitter = JitterBuffer(self._play, origin=origin, depth=jitter_depth, stats=self._stats)
        self._timeline = timeline
        self._rate = sample_rate
        self._payload_types = payload_types
        self._codec = codec
        self._amrwb_mode = amrwb_mode
        self._on_unsupported = on_unsupported
        self._specs: dict[int, CodecSpec | None] = {}
        self._clocks: dict[int, int] = {}  # payload type -> clock rate for the jitter buffer
        self._decoders: dict[int, tuple[Decoder, Resampler | None]] = {}

    @property
    def stats(self) -> LegStats:
        self._stats.late_samples = self._timeline.late_samples
        return self._stats

    def push(self, packet: RtpPacket, arrival: float) -> None:
        pt = packet.payload_type
        clock = self._clocks.get(pt)
        if clock is None:
            spec = self._specs[pt] = self._resolve(pt)
            clock = self._clocks[pt] = spec.clock_rate if spec is not None and spec.is_audio else 0
        self.jitter.push(packet, arrival, clock)

    def _resolve(self, payload_type: int) -> CodecSpec | None:
        """The payload type's codec; called once per payload type (``push`` keeps the answer)."""
        if self._codec is not None:
            return self._codec
        try:
            return self._payload_types.get(payload_type)
        except UnsupportedCodec as exc:
            if self._on_unsupported is not None:
                self._on_unsupported(payload_type, str(exc))
            return None

    def _play(self, packet: RtpPacket, position: int | None) -> None:
        spec = self._specs[packet.payload_type]
        if spec is None:
            self._stats.unsupported += 1
            return
        if position is None:
            return
        try:
            decoder, resampler = self._decoders[packet.payload_type]
        except KeyError:
            decoder, resampler = self._decoders[packet.payload_type] = self._make_decoder(spec)
        if resampler is None and isinstance(
            decoder, G711Decoder
        ):  # the common case: decoded a second at a time
            self._timeline.place_encoded(
                position * self._rate // spec.clock_rate, packet.payload, decoder.table
            )
            return
        try:
            pcm = decoder.decode(packet.payload)
        except CodecError:
            self._stats.decode_errors += 1
            return
        if resampler is not None:
            pcm = resampler.resample(pcm)
        self._timeline.place(position * self._rate // spec.clock_rate, pcm)

    def _make_decoder(self, spec: CodecSpec) -> tuple[Decoder, Resampler | None]:
        opus_rate = self._rate if self._rate in (8000, 12000, 16000, 24000, 48000) else 48000
        decoder = make_decoder(spec, opus_rate=opus_rate, amrwb_mode=self._amrwb_mode)
        self._stats.codec, self._stats.sample_rate = spec.name, decoder.sample_rate
        if decoder.sample_rate == self._rate:
            return decoder, None
        return decoder, Resampler(decoder.sample_rate, self._rate)


class CallRecording:
    """Both legs of one call, mixed to stereo (left = inbound, right = outbound) at
    ``sample_rate``, written to ``path`` (None: no file, analytics only)."""

    def __init__(
        self,
        path: Path | None,
        *,
        origin: float,
        sample_rate: int = 8000,
        payload_types: PayloadTypes | None = None,
        codecs: dict[Track, CodecSpec] | None = None,
        jitter_depth: float = 0.060,
        holdback: float = 1.0,
        amrwb_mode: AmrWbMode = "auto",
        analytics: CallAnalytics | None = None,
        on_unsupported: Callable[[Track, int, str], None] | None = None,
        start: float = 0.0,
        paused: Sequence[tuple[float, float]] = (),
        append: bool = False,
    ) -> None:
        self.origin = origin
        self.sample_rate = sample_rate
        self.holdback = holdback
        self.mixer = StereoMixer(sample_rate)
        if start or paused:
            self.mixer.start_at(start, paused)
        types = payload_types if payload_types is not None else PayloadTypes()
        codecs = codecs or {}
        self.inbound, self.outbound = (
            LegReceiver(
                timeline,
                sample_rate,
                origin=origin,
                payload_types=types,
                codec=codecs.get(track),
                jitter_depth=jitter_depth,
                amrwb_mode=amrwb_mode,
                on_unsupported=partial(on_unsupported, track)
                if on_unsupported is not None
                else None,
            )
            for track, timeline in _legs(self.mixer)
        )
        self.writer = WavWriter(path, sample_rate, append=append) if path is not None else None
        self.analytics = analytics if analytics is not None else CallAnalytics(sample_rate)

    def leg(self, track: Track) -> LegReceiver:
        return self.inbound if track == "inbound" else self.outbound

    def pause(self, now: float) -> None:
        """Silence the call from ``now`` (the media stopped) until it resumes.

        Audio received before the stop is never silenced: what the jitter buffers still hold is
        placed first, and the pause starts after the last placed sample if that is later (a
        sender's timestamps run a little ahead of the wall clock)."""
        self.inbound.jitter.flush()
        self.outbound.jitter.flush()
        self.mixer.pause(max(now - self.origin, self.mixer.placed_end))

    def resume(self, now: float) -> None:
        self.mixer.resume(now - self.origin)

    def tick(self, now: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Mix and write everything older than ``holdback``: the new stereo frames (to publish
        them) and the analytics windows they completed."""
        self.inbound.jitter.poll(now)
        self.outbound.jitter.poll(now)
        frames = self.mixer.mix(now - self.origin - self.holdback)
        return frames, self._emit(frames)

    def finish(self, now: float) -> dict[str, Any]:
        """Play what the jitter buffers hold, write the rest (at least up to ``now``) and
        summarise the recording."""
        self.inbound.jitter.flush()
        self.outbound.jitter.flush()
        windows = self._emit(self.mixer.finish(now - self.origin))
        last = self.analytics.flush()
        return {
            "path": str(self.writer.path) if self.writer is not None else None,
            "sample_rate": self.sample_rate,
            "channels": {"left": "inbound", "right": "outbound"},
            "duration": round(self.mixer.position, 3),
            "paused": [[round(a, 3), round(b, 3)] for a, b in self.mixer.paused_intervals],
            "legs": {
                "inbound": self.inbound.stats.to_dict(),
                "outbound": self.outbound.stats.to_dict(),
            },
            "analytics": self.analytics.totals(),
            "windows": windows + ([last] if last else []),
        }

    def _emit(self, frames: np.ndarray) -> list[dict[str, Any]]:
        if self.writer is not None:
            self.writer.write(frames)
        return self.analytics.feed(frames)


def _legs(mixer: StereoMixer) -> tuple[tuple[Track, LegTimeline], ...]:
    return (("inbound", mixer.inbound), ("outbound", mixer.outbound))
