"""Per-leg jitter buffer: puts RTP packets back in order and on the leg's wall-clock timeline.

Packets are keyed on extended (unwrapped) sequence numbers. A stream's first packets are held
until the first of them has waited ``depth`` seconds (or ``max_pending`` are held): a packet sent
before them may still come, and nothing can be placed before audio already played. The stream then
starts at the lowest sequence number held. From there an in-order packet is played at once (no
added latency); a packet after a gap waits until the gap is filled or until the oldest waiting
packet has waited ``depth`` seconds, then the gap is declared lost. Played packets go to ``sink``
with their *position*: where the packet's first sample lies on the leg's timeline, in ticks of
the packet's clock rate, counted from ``origin`` (the call's media start, same clock as arrival
times). Gaps between positions (loss, silence suppression, a leg that paused) are silence for
whoever writes the audio.

A packet of another SSRC is held until another packet of that SSRC with a sequence number within
``max_misorder`` of it confirms it (then the new stream starts with both, held as above, in either
order), so a stray datagram does not restart the stream; a sequence jump
beyond ``max_dropout`` / ``max_misorder`` on the same SSRC likewise needs two consecutive packets
(RFC 3550 A.1), the first of which is discarded.

Positions follow RTP timestamps (so network jitter does not move audio) and are tied to the wall
clock at the places where RTP timestamps cannot be trusted:

- the first packet of a stream (first packet, new SSRC, sequence restart, clock-rate change)
  lands at the earliest time its held successors imply (each one's arrival minus its timestamp
  distance from the first: the least delayed packet wins), at most its own arrival time, never
  before the end of what the leg already played;
- a packet that would land more than ``resync`` seconds after its own arrival time (a forward
  timestamp jump) is moved back to its arrival time; a backward jump continues where audio ended;
- when every packet of a ``window`` arrived more than ``resync`` seconds after its position
  (sender clock slower than ours, or a sender that stopped its clock while on hold), the
  timeline moves forward by the smallest lag seen, which inserts silence.
"""

from collections.abc import Callable

from media_ingest.protocol.rtp import RtpPacket
from media_ingest.protocol.stats import LegStats

Sink = Callable[[RtpPacket, int | None], None]
"""Receives each played packet and its position (None for untimed packets, clock rate 0)."""

_NO_LAG = float("inf")


class JitterBuffer:
    """Reorders one leg's packets and assigns them timeline positions.

    ``push`` takes the packet's clock rate (from the codec of its payload type); pass 0 for
    packets that are sequenced but carry no audio timeline (RFC 4733 telephone-event, comfort
    noise): they keep the order but neither move nor measure the timeline.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        origin: float,
        depth: float = 0.060,
        resync: float = 0.5,
        window: float = 2.0,
        max_dropout: int = 3000,
        max_misorder: int = 100,
        max_pending: int = 64,
        stats: LegStats | None = None,
    ) -> None:
        self.stats = stats if stats is not None else LegStats()
        self._sink = sink
        self._origin = origin
        self._depth = depth
        self._resync = resync
        self._window = window
        self._max_dropout = max_dropout
        self._max_misorder = max_misorder
        self._max_pending = max_pending
        # sequence state of the current stream
        self._ssrc: int | None = None
        self._max = 0  # highest extended sequence number seen: the reference for unwrapping
        self._next: int | None = None  # next sequence number to play; None while the start is held
        self._first = 0  # the sequence number the stream started at
        self._pending: dict[int, tuple[RtpPacket, float, int]] = {}
        self._lost: set[int] = set()
        self._probe: int | None = None
        self._candidate: tuple[RtpPacket, float, int] | None = None
        # timeline state, kept across streams
        self._rate = 0
        self._last_ts: int | None = None
        self._last_pos = 0
        self._last_seq = 0
        self._dur = 0
        self._end = 0
        self._win_start = 0.0
        self._win_min = _NO_LAG
        # RFC 3550 A.8 state
        self._tr_arrival: float | None = None
        self._tr_ts = 0
        self._tr_rate = 0

    @property
    def pending(self) -> int:
        """Packets waiting for a gap before them to be filled or given up."""
        return len(self._pending)

    def timeline(self) -> dict[str, int] | None:
        """Where the current stream's RTP timestamps lie on the timeline (None before any audio):
        what :meth:`continue_timeline` needs to place the same stream in another process."""
        if self._ssrc is None or self._last_ts is None:
            return None
        return {
            "ssrc": self._ssrc,
            "seq": self._last_seq & 0xFFFF,
            "ts": self._last_ts,
            "pos": self._last_pos,
            "rate": self._rate,
        }

    def continue_timeline(self, saved: dict[str, int], now: float) -> None:
        """Go on with a stream an earlier process placed up to ``saved`` (:meth:`timeline`): its
        packets land by their timestamps, sample-exact, wherever this process picks them up; the
        first ones are held as at any stream's start (no loss counted for what it never saw)."""
        self._ssrc = saved["ssrc"]
        self._max = self._last_seq = saved["seq"]
        self._last_ts, self._last_pos = saved["ts"], saved["pos"]
        self._rate = self.stats.clock_rate = saved["rate"]
        self._dur = self._rate // 50
        self._end = self._last_pos + self._dur
        self._win_start, self._win_min = now, _NO_LAG

    def push(self, packet: RtpPacket, arrival: float, clock_rate: int) -> None:
        self.stats.received += 1
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                # a new SSRC is adopted on its second consecutive packet, so that a stray
                # packet from elsewhere does not restart the stream
                candidate = self._candidate
                if (
                    candidate is None
                    or candidate[0].ssrc != packet.ssrc
                    or not 0
                    < abs(_distance(candidate[0].sequence, packet.sequence))
                    <= self._max_misorder
                ):
                    if candidate is not None:
                        self.stats.discarded += 1
                    self._candidate = (packet, arrival, clock_rate)
                    if self._pending:
                        self._release(arrival)
                    return
                self.stats.ssrc_changes += 1
                self._candidate = None
                self._start_stream(candidate[0])
                self._accept(*candidate)
            else:
                self._start_stream(packet)
        self._accept(packet, arrival, clock_rate)

    def _accept(self, packet: RtpPacket, arrival: float, clock_rate: int) -> None:
        stats = self.stats
        seq = packet.sequence
        highest = self._max
        delta = (seq - highest) & 0xFFFF
        ext = highest + delta if delta < 0x8000 else highest + delta - 0x10000
        if ext > highest + self._max_dropout or ext < highest - self._max_misorder:
            if self._probe != seq:
                self._probe = (seq + 1) & 0xFFFF
                stats.discarded += 1
                if self._pending:
                    self._release(arrival)
                return
            stats.restarts += 1
            self._start_stream(packet)
            ext = highest = self._max
        if clock_rate:
            self._measure_jitter(packet.timestamp, arrival, clock_rate)
        if ext > highest:
            self._max = ext
        following = self._next
        if following is None or ext > following:  # held: the stream's start, or after a gap
            if ext in self._pending:
                stats.duplicated += 1
                return
            if ext < highest:
                stats.reordered += 1
            self._pending[ext] = (packet, arrival, clock_rate)
            self._release(arrival)
        elif ext == following:
            if ext < highest:
                stats.reordered += 1
            self._play(packet, arrival, clock_rate, ext)
            self._next = ext + 1
            if self._pending:
                self._drain()
                self._release(arrival)
        elif ext in self._lost:
            self._lost.discard(ext)
            stats.late += 1
        elif ext < self._first:  # sent before the stream's start, came after its hold
            stats.late += 1
        else:
            stats.duplicated += 1

    def poll(self, now: float) -> None:
        """Give up on gaps whose waiting packets are older than ``depth`` (call it on a timer)."""
        if self._pending:
            self._release(now)

    def flush(self) -> None:
        """Play everything pending now, counting the gaps as lost (end of call, new stream)."""
        while self._pending:
            self._skip_to(min(self._pending))

    def _start_stream(self, packet: RtpPacket) -> None:
        self.flush()
        self._ssrc = packet.ssrc
        self._max = packet.sequence
        self._next = None
        self._lost.clear()
        self._probe = None
        self._last_ts = None
        self._tr_arrival = None

    def _release(self, now: float) -> None:
        pending = self._pending
        while pending and (
            len(pending) > self._max_pending
            or now - min(item[1] for item in pending.values()) >= self._depth
        ):
            self._skip_to(min(pending))

    def _skip_to(self, first: int) -> None:
        if self._next is None:
            self._begin(first)
            return
        lost = range(self._next, first)
        self.stats.lost += len(lost)
        if len(self._lost) > 4 * self._max_misorder:
            floor = self._next - self._max_misorder
            self._lost = {seq for seq in self._lost if seq >= floor}
        self._lost.update(lost)
        self._next = first
        self._drain()

    def _begin(self, first: int) -> None:
        """End the hold of the stream's start: play from ``first``, the lowest sequence number held,
        anchored where the held packets say it was sent (see the module docstring)."""
        packet, arrival, rate = self._pending[first]
        if rate:
            wall = arrival
            for ext, (other, other_arrival, other_rate) in self._pending.items():
                if ext > first and other_rate == rate:
                    ticks = (other.timestamp - packet.timestamp) & 0xFFFFFFFF
                    if ticks <= self._resync * rate:  # a plausible distance, not a timestamp jump
                        wall = min(wall, other_arrival - ticks / rate)
            self._pending[first] = (packet, wall, rate)
        self._first = self._next = first
        self._drain()

    def _drain(self) -> None:
        pending = self._pending
        while (seq := self._next) is not None and (item := pending.pop(seq, None)) is not None:
            self._play(item[0], item[1], item[2], seq)
            self._next = seq + 1

    def _measure_jitter(self, ts: int, arrival: float, rate: int) -> None:
        if self._tr_arrival is not None and rate == self._tr_rate:
            dts = (ts - self._tr_ts) & 0xFFFFFFFF
            if dts >= 0x80000000:
                dts -= 0x100000000
            d = abs((arrival - self._tr_arrival) * rate - dts)
            self.stats.jitter += (d - self.stats.jitter) / 16.0
        self._tr_arrival, self._tr_ts, self._tr_rate = arrival, ts, rate

    def _play(self, packet: RtpPacket, arrival: float, rate: int, ext: int) -> None:
        if not rate:
            self._sink(packet, None)
            return
        ts = packet.timestamp
        wall = round((arrival - self._origin) * rate)
        if self._last_ts is None or rate != self._rate:
            pos = self._anchor(wall, rate, arrival)
        else:
            d = (ts - self._last_ts) & 0xFFFFFFFF
            if d >= 0x80000000:
                d -= 0x100000000
            if d < 0:
                pos = self._end
                self.stats.resyncs += 1
            else:
                pos = self._last_pos + d
                if pos - wall > self._resync * rate:
                    pos = max(wall, self._end)
                    self.stats.resyncs += 1
                elif d and ext - self._last_seq == 1 and not packet.marker and d <= rate // 5:
                    self._dur = d
            lag = wall - pos
            if lag < self._win_min:
                self._win_min = lag
            if arrival - self._win_start >= self._window:
                if self._win_min > self._resync * rate:
                    pos += int(self._win_min)
                    self.stats.resyncs += 1
                self._win_start, self._win_min = arrival, _NO_LAG
        self._last_ts, self._last_pos, self._last_seq = ts, pos, ext
        self._end = pos + self._dur
        self._sink(packet, pos)

    def _anchor(self, wall: int, rate: int, arrival: float) -> int:
        if rate != self._rate:
            if self._rate:
                self._end = self._end * rate // self._rate
            self._rate = self.stats.clock_rate = rate
            self._dur = rate // 50
        self._win_start, self._win_min = arrival, _NO_LAG
        return max(wall, self._end)


def _distance(first: int, second: int) -> int:
    """Sequence number distance from ``first`` to ``second`` (mod 2^16), signed."""
    delta = (second - first) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta
