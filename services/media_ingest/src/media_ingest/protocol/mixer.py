"""Both legs of a call on one wall-clock timeline, as stereo frames (left = inbound caller,
right = outbound). Audio is placed by timeline position; whatever no packet covered is silence,
so a leg that sends nothing, loses packets or suppresses silence stays aligned with the other.
"""

from collections.abc import Sequence

import numpy as np

_INITIAL_CAPACITY = 16000


class LegTimeline:
    """One leg's PCM at the recording rate, from the mixer's read position onwards.

    ``place`` writes audio at a timeline index (samples since the call's media start). A gap
    before it is silence; audio overlapping what is already there is cut (the first writer
    wins); a gap or overlap of at most ``snap`` samples is closed, so that rounding and
    resampler delays do not leave clicks. Audio before the read position came too late to be
    recorded and is counted in ``late_samples``.
    """

    def __init__(self, snap: int = 16) -> None:
        self._buf = np.zeros(_INITIAL_CAPACITY, np.int16)
        self._base = 0  # timeline index of _buf[0], the next sample to read
        self._fill = 0  # samples of _buf holding placed audio or silence before it
        self._snap = snap
        self.late_samples = 0
        self.end = 0  #: timeline index just after the last placed sample (not moved by ``take``)
        self.first: int | None = None  #: timeline index of the first sample placed since the start
        # Encoded audio placed but not yet decoded: (offset in _buf, bytes), one decode table.
        self._encoded: list[tuple[int, bytes]] = []
        self._table: np.ndarray | None = None

    def place(self, index: int, pcm: np.ndarray) -> None:
        span = self._claim(index, len(pcm))
        if span is not None:
            rel, skip = span
            self._decode_pending()
            self._buf[rel : rel + len(pcm) - skip] = pcm[skip:]

    def place_encoded(self, index: int, payload: bytes, table: np.ndarray) -> None:
        """Like ``place`` for one-byte-per-sample audio (G.711) decoded through ``table``.

        Decoding waits until the audio is read, so that a second of packets is decoded by one
        table lookup instead of fifty (the per-packet cost of the media path)."""
        span = self._claim(index, len(payload))
        if span is not None:
            if table is not self._table:
                self._decode_pending()
                self._table = table
            rel, skip = span
            self._encoded.append((rel, payload[skip:] if skip else payload))

    def _claim(self, index: int, count: int) -> tuple[int, int] | None:
        """Where ``count`` samples placed at ``index`` go in _buf, and how many leading ones to drop
        (late, or overlapping audio already there); None when nothing is left. Gaps are zeroed."""
        rel = index - self._base
        skip = 0
        if rel < 0:
            self.late_samples += min(-rel, count)
            skip, rel = -rel, 0
        fill = self._fill
        gap = rel - fill
        if -self._snap <= gap <= self._snap:
            rel = fill
        elif gap < 0:
            skip, rel = skip - gap, fill
        end = rel + count - skip
        if end <= fill or skip >= count:
            return None
        if end > len(self._buf):
            self._decode_pending()
            grown = np.zeros(max(end, 2 * len(self._buf)), np.int16)
            grown[:fill] = self._buf[:fill]
            self._buf = grown
        if rel > fill:
            self._buf[fill:rel] = 0
        if self.first is None:
            self.first = self._base + rel
        self._fill = end
        self.end = self._base + end
        return rel, skip

    def _decode_pending(self) -> None:
        encoded, self._encoded = self._encoded, []
        if not encoded:
            return
        table = self._table
        assert table is not None
        start = encoded[0][0]
        joined = b"".join(payload for _, payload in encoded)
        if start + len(joined) == encoded[-1][0] + len(
            encoded[-1][1]
        ):  # contiguous: the usual case
            self._buf[start : start + len(joined)] = table[np.frombuffer(joined, np.uint8)]
            return
        for rel, payload in encoded:
            self._buf[rel : rel + len(payload)] = table[np.frombuffer(payload, np.uint8)]

    def start_at(self, index: int) -> None:
        """Read (and place) from ``index`` on: the timeline of a call this leg joins midway."""
        self._base = self.end = index
        self._fill = 0
        self.first = None
        self._encoded.clear()

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` samples (silence where none was placed); moves the read position."""
        self._decode_pending()
        out = np.zeros(count, np.int16)
        have = min(self._fill, count)
        out[:have] = self._buf[:have]
        rest = self._fill - have
        if rest:
            self._buf[:rest] = self._buf[have : self._fill]
        self._fill = rest
        self._base += count
        return out


class StereoMixer:
    """Interleaves the two legs' timelines and silences paused intervals.

    Times are seconds on the call timeline (0 = media start). ``mix(until)`` returns the frames
    from where the last call stopped up to ``until``; the caller leaves a margin behind real time
    so that late packets still find their place.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.inbound = LegTimeline()
        self.outbound = LegTimeline()
        self._done = 0
        self._paused_at: int | None = None
        self._pauses: list[tuple[int, int]] = []

    @property
    def position(self) -> float:
        """Seconds of stereo audio produced so far."""
        return self._done / self.sample_rate

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def placed_end(self) -> float:
        """Seconds on the call timeline just after the last audio placed on either leg."""
        return max(self.inbound.end, self.outbound.end) / self.sample_rate

    @property
    def paused_intervals(self) -> list[tuple[float, float]]:
        """Paused (silenced) intervals in seconds; an open pause ends where the audio ends."""
        rate = self.sample_rate
        spans = list(self._pauses)
        if self._paused_at is not None:
            spans.append((self._paused_at, max(self._done, self._paused_at)))
        return [(start / rate, end / rate) for start, end in spans]

    @property
    def first_placed(self) -> float | None:
        """Seconds on the call timeline of the first audio placed on either leg (since the start)."""
        firsts = [leg.first for leg in (self.inbound, self.outbound) if leg.first is not None]
        return min(firsts) / self.sample_rate if firsts else None

    def start_at(self, at: float, paused: Sequence[tuple[float, float]] = ()) -> None:
        """Go on from ``at`` seconds (a call recorded up to there by an earlier process, whose
        closed ``paused`` intervals it keeps): nothing is produced before it."""
        rate = self.sample_rate
        self._done = round(at * rate)
        self._pauses = [(round(a * rate), round(b * rate)) for a, b in paused]
        self.inbound.start_at(self._done)
        self.outbound.start_at(self._done)

    def pause(self, at: float) -> None:
        if self._paused_at is None:
            self._paused_at = max(round(at * self.sample_rate), 0)

    def resume(self, at: float) -> None:
        if self._paused_at is not None:
            end = max(round(at * self.sample_rate), self._paused_at)
            self._pauses.append((self._paused_at, end))
            self._paused_at = None

    def mix(self, until: float) -> np.ndarray:
        count = round(until * self.sample_rate) - self._done
        if count <= 0:
            return np.zeros((0, 2), np.int16)
        start = self._done
        frames = np.empty((count, 2), np.int16)
        frames[:, 0] = self.inbound.take(count)
        frames[:, 1] = self.outbound.take(count)
        self._done += count
        spans = list(self._pauses)
        if self._paused_at is not None:
            spans.append((self._paused_at, self._done))
        for pause_start, pause_end in spans:
            lo, hi = max(pause_start - start, 0), min(pause_end - start, count)
            if lo < hi:
                frames[lo:hi] = 0
        return frames

    def finish(self, until: float = 0.0) -> np.ndarray:
        """The remaining frames, up to ``until`` or to the end of the placed audio if later."""
        end = max(round(until * self.sample_rate), self.inbound.end, self.outbound.end)
        frames = self.mix(end / self.sample_rate)
        self.resume(end / self.sample_rate)
        return frames
