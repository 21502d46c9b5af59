import pytest

from media_ingest.protocol.jitter import JitterBuffer
from media_ingest.protocol.rtp import RtpPacket

RATE = 8000
PTIME = 0.02
TICKS = 160


class Leg:
    """A jitter buffer whose played packets are recorded as (sequence, position)."""

    def __init__(self, **kwargs: float) -> None:
        self.played: list[tuple[int, int | None]] = []
        self.jb = JitterBuffer(
            lambda pkt, pos: self.played.append((pkt.sequence, pos)), origin=100.0, **kwargs
        )

    def push(
        self,
        seq: int,
        ts: int,
        arrival: float,
        ssrc: int = 1,
        rate: int = RATE,
        marker: bool = False,
    ) -> None:
        pkt = RtpPacket(0, marker, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, b"")
        self.jb.push(pkt, arrival, rate)

    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.played]

    def positions(self) -> list[int | None]:
        return [pos for _, pos in self.played]


def stream(
    leg: Leg,
    seqs: list[int],
    *,
    seq0: int = 0,
    ts0: int = 0,
    t0: float = 100.5,
    delays: dict[int, float] | None = None,
) -> None:
    """Send packet k (k in ``seqs``, in that order) sent at t0 + k*20 ms plus its delay."""
    delays = delays or {}
    for k in seqs:
        leg.push(seq0 + k, ts0 + k * TICKS, t0 + k * PTIME + delays.get(k, 0.0))


def test_the_start_is_held_for_the_depth_then_in_order_packets_play_at_once_on_the_rtp_timeline() -> (
    None
):
    leg = Leg(depth=0.06)
    for k in range(3):
        leg.push(k, 1000 + k * TICKS, 100.5 + k * PTIME)
    assert leg.played == [] and leg.jb.pending == 3  # a packet sent before the first may still come
    leg.jb.poll(100.5 + 0.059)
    assert leg.played == []
    leg.jb.poll(100.5 + 0.061)  # the first has waited the depth: the stream starts
    assert leg.seqs() == [0, 1, 2] and leg.jb.pending == 0
    for k in range(3, 8):
        leg.push(k, 1000 + k * TICKS, 100.5 + k * PTIME)
        assert len(leg.played) == k + 1  # from then on no added latency
    assert leg.positions() == [4000 + k * TICKS for k in range(8)]  # first one at its arrival
    s = leg.jb.stats
    assert (s.received, s.lost, s.reordered, s.duplicated, s.late) == (8, 0, 0, 0, 0)
    assert s.jitter == pytest.approx(0.0, abs=1e-6) and s.clock_rate == RATE


def test_no_depth_no_hold() -> None:
    leg = Leg(depth=0.0)
    for k in range(3):
        leg.push(k, k * TICKS, 100.5 + k * PTIME)
        assert len(leg.played) == k + 1
    assert leg.positions() == [4000 + k * TICKS for k in range(3)]


@pytest.mark.parametrize(
    "seq0", [1000, 65535]
)  # 65535: the first packet's number wraps to the second's
def test_a_first_packet_that_arrives_after_the_second_is_played_first(seq0: int) -> None:
    leg = Leg(depth=0.06)
    leg.push(seq0 + 1, TICKS, 100.52)  # the stream's second packet, on time
    leg.push(seq0, 0, 100.525)  # its first, 25 ms late: the start of the stream, not a duplicate
    stream(leg, range(2, 4), seq0=seq0)
    leg.jb.poll(100.52 + 0.06)
    assert leg.seqs() == [(seq0 + k) & 0xFFFF for k in range(4)]
    # anchored where the least delayed packet says the stream began, not at the late one's arrival
    assert leg.positions() == [4000 + k * TICKS for k in range(4)]
    s = leg.jb.stats
    assert (s.received, s.lost, s.reordered, s.duplicated, s.late, s.discarded) == (
        4,
        0,
        1,
        0,
        0,
        0,
    )


def test_the_hold_ends_when_max_pending_packets_are_held() -> None:
    leg = Leg(depth=10.0, max_pending=3)
    stream(leg, [1, 0, 2])
    assert leg.played == []
    stream(leg, [3])
    assert leg.seqs() == [0, 1, 2, 3]


def test_a_packet_sent_before_the_start_that_comes_after_the_hold_is_late() -> None:
    leg = Leg(depth=0.06)
    stream(leg, range(1, 6))
    leg.push(0, 0, 100.61)
    assert leg.seqs() == [1, 2, 3, 4, 5]
    s = leg.jb.stats
    assert (s.late, s.duplicated, s.lost) == (1, 0, 0)
    leg.push(3, 3 * TICKS, 100.62)  # a played one again: a duplicate
    assert s.duplicated == 1


def test_an_implausible_timestamp_in_the_hold_does_not_move_the_start() -> None:
    leg = Leg(depth=0.06)
    leg.push(0, 0, 100.5)
    leg.push(1, TICKS + RATE * 3600, 100.52)  # an hour ahead: implies a start long before the call
    leg.jb.poll(100.56)
    assert leg.played[0] == (0, 4000)


def test_reordering_within_depth_is_repaired() -> None:
    leg = Leg()
    stream(leg, [0, 2, 1, 3, 5, 4], delays={1: 0.03, 4: 0.03})
    assert leg.seqs() == [0, 1, 2, 3, 4, 5]
    assert leg.positions() == [4000 + k * TICKS for k in range(6)]
    assert (leg.jb.stats.reordered, leg.jb.stats.lost) == (2, 0)


def test_loss_is_declared_after_depth_and_leaves_a_gap_of_the_right_length() -> None:
    leg = Leg(depth=0.06)
    stream(leg, [0, 1, 3, 4])
    assert leg.seqs() == [0, 1] and leg.jb.pending == 2
    leg.jb.poll(100.5 + 3 * PTIME + 0.059)
    assert leg.jb.pending == 2
    leg.jb.poll(100.5 + 3 * PTIME + 0.06)
    assert leg.seqs() == [0, 1, 3, 4]
    assert leg.positions()[2] - leg.positions()[1] == 2 * TICKS  # one packet of silence
    assert leg.jb.stats.lost == 1
    leg.push(2, 2 * TICKS, 100.7)  # arrives after it was given up: late, not played
    assert leg.jb.stats.late == 1 and len(leg.played) == 4
    leg.push(2, 2 * TICKS, 100.7)  # a second copy is a duplicate
    assert leg.jb.stats.duplicated == 1


def test_later_packets_release_a_gap_without_a_timer() -> None:
    leg = Leg(depth=0.06)
    stream(leg, [0, 2, 3, 4, 5, 6])
    assert leg.seqs() == [0, 2, 3, 4, 5, 6] and leg.jb.pending == 0
    assert leg.jb.stats.lost == 1


def test_max_pending_forces_release() -> None:
    leg = Leg(depth=10.0, max_pending=3)
    stream(leg, [0, 2, 3, 4, 5])
    assert leg.seqs() == [0, 2, 3, 4, 5] and leg.jb.stats.lost == 1


def test_duplicates_played_or_pending_are_dropped() -> None:
    leg = Leg()
    stream(leg, [0, 1, 1, 3, 3, 2])
    assert leg.seqs() == [0, 1, 2, 3]
    assert leg.jb.stats.duplicated == 2 and leg.jb.stats.received == 6


def test_sequence_and_timestamp_wrap_around() -> None:
    leg = Leg()
    stream(leg, [0, 1, 2, 4, 3, 5, 6, 7, 8, 9], seq0=65530, ts0=2**32 - 3 * TICKS)
    assert leg.seqs() == [(65530 + k) & 0xFFFF for k in range(10)]
    assert leg.positions() == [4000 + k * TICKS for k in range(10)]
    s = leg.jb.stats
    assert (s.lost, s.reordered, s.duplicated, s.discarded, s.resyncs) == (0, 1, 0, 0, 0)


def test_ssrc_change_reanchors_on_the_wall_clock() -> None:
    leg = Leg()
    stream(leg, range(3))
    # new source 1 s later (hold music, transfer), unrelated sequence and timestamps
    for k in range(3):
        leg.push(40000 + k, 123456 + k * TICKS, 101.5 + k * PTIME, ssrc=2)
    leg.jb.poll(101.5 + 0.06)
    assert leg.positions()[3:] == [12000 + k * TICKS for k in range(3)]  # its first one included
    # a source that starts before the previous one's audio ended continues where it ended
    leg.push(7, 99, 101.5 + 2 * PTIME + 0.001, ssrc=3)
    leg.push(8, 99 + TICKS, 101.5 + 2 * PTIME + 0.002, ssrc=3)
    leg.jb.flush()
    assert leg.positions()[-2:] == [12000 + 3 * TICKS, 12000 + 4 * TICKS]
    assert leg.jb.stats.ssrc_changes == 2 and leg.jb.stats.discarded == 0


def test_pending_packets_of_the_old_ssrc_are_played_first() -> None:
    leg = Leg()
    stream(leg, [0, 2])
    leg.push(500, 0, 100.57, ssrc=9)
    assert leg.seqs() == [0] and leg.jb.pending == 1  # a new SSRC waits for its second packet
    leg.push(501, TICKS, 100.59, ssrc=9)
    leg.jb.flush()
    assert leg.seqs() == [0, 2, 500, 501] and leg.jb.stats.lost == 1


def test_a_new_ssrc_whose_first_two_packets_are_swapped_keeps_both() -> None:
    leg = Leg()
    stream(leg, range(3))
    leg.push(501, 5000 + TICKS, 101.52, ssrc=9)
    leg.push(500, 5000, 101.525, ssrc=9)  # confirms the new source although it comes second
    leg.push(502, 5000 + 2 * TICKS, 101.54, ssrc=9)
    leg.jb.poll(101.52 + 0.06)
    assert leg.seqs() == [0, 1, 2, 500, 501, 502]
    assert leg.positions()[3:] == [12000 + k * TICKS for k in range(3)]
    s = leg.jb.stats
    assert (s.ssrc_changes, s.discarded, s.lost, s.duplicated) == (1, 0, 0, 0)


def test_stray_packets_of_other_ssrcs_do_not_restart_the_stream() -> None:
    leg = Leg()
    stream(leg, range(3))
    leg.push(1234, 999999, 100.55, ssrc=66)
    leg.push(4321, 5, 100.555, ssrc=77)
    stream(leg, range(3, 6))
    assert leg.seqs() == list(range(6)) and leg.positions() == [4000 + k * TICKS for k in range(6)]
    s = leg.jb.stats
    assert (s.ssrc_changes, s.discarded, s.resyncs, s.received) == (0, 1, 0, 8)


def test_forward_timestamp_jump_is_pulled_back_to_the_wall_clock() -> None:
    leg = Leg()
    stream(leg, range(3))
    leg.push(3, 3 * TICKS + RATE * 3600, 100.5 + 3 * PTIME)  # an hour ahead
    leg.push(4, 4 * TICKS + RATE * 3600, 100.5 + 4 * PTIME)
    assert leg.positions()[3:] == [4000 + 3 * TICKS, 4000 + 4 * TICKS]
    assert leg.jb.stats.resyncs == 1


def test_backward_timestamp_jump_continues_where_audio_ended() -> None:
    leg = Leg()
    stream(leg, range(3))
    leg.push(3, 5, 100.5 + 3 * PTIME)
    leg.push(4, 5 + TICKS, 100.5 + 4 * PTIME)
    assert leg.positions()[3:] == [4000 + 3 * TICKS, 4000 + 4 * TICKS]


def test_silence_suppression_gap_keeps_rtp_timing() -> None:
    leg = Leg()
    stream(leg, range(3))
    # 2 s of DTX: sequence continues, timestamp and arrival jump together
    leg.push(3, 3 * TICKS + 2 * RATE, 102.5 + 3 * PTIME, marker=True)
    assert leg.positions()[-1] == 4000 + 3 * TICKS + 2 * RATE
    assert leg.jb.stats.resyncs == 0


def test_sender_that_stops_its_clock_on_hold_is_realigned_to_the_wall_clock() -> None:
    leg = Leg(resync=0.5, window=1.0)
    stream(leg, range(3))
    # 5 s of hold without packets, then timestamps continue as if no time had passed
    for k in range(3, 200):
        leg.push(k, k * TICKS, 105.5 + k * PTIME)
    last_seq, last_pos = leg.played[-1]
    wall = int((105.5 + last_seq * PTIME - 100.0) * RATE)
    assert abs(wall - last_pos) <= 0.5 * RATE
    assert leg.jb.stats.resyncs == 1


def test_network_stall_burst_keeps_rtp_timing() -> None:
    leg = Leg(depth=0.06, resync=0.5, window=2.0)
    stall = {k: 0.3 - (k - 10) * PTIME for k in range(10, 25)}  # 10..24 arrive together
    stream(leg, range(100), delays=stall)
    assert leg.positions() == [4000 + k * TICKS for k in range(100)]
    assert leg.jb.stats.resyncs == 0 and leg.jb.stats.jitter > 0


def test_sequence_restart_on_same_ssrc_needs_two_consecutive_packets() -> None:
    leg = Leg()
    stream(leg, range(3))
    leg.push(20000, 77, 100.6)  # stray packet: discarded
    assert len(leg.played) == 3 and leg.jb.stats.discarded == 1
    leg.push(3, 3 * TICKS, 100.56)
    leg.push(30000, 5000, 100.6)
    leg.push(30001, 5000 + TICKS, 100.62)  # confirms a restart
    leg.jb.flush()
    assert leg.seqs() == [0, 1, 2, 3, 30001]
    assert leg.jb.stats.restarts == 1 and leg.jb.stats.discarded == 2


def test_untimed_packets_keep_order_without_positions() -> None:
    leg = Leg()
    leg.push(0, 0, 100.5)
    leg.push(1, 0, 100.51, rate=0)  # telephone-event
    leg.push(2, 2 * TICKS, 100.54)
    leg.jb.flush()
    assert leg.played == [(0, 4000), (1, None), (2, 4000 + 2 * TICKS)]


@pytest.mark.parametrize("delay_ms", [2.0, 10.0])
def test_interarrival_jitter_matches_rfc3550(delay_ms: float) -> None:
    leg = Leg()
    stream(leg, range(400), delays={k: delay_ms / 1000 for k in range(0, 400, 2)})
    # |D| is delay*rate for every packet: J converges to it (A.8: J += (|D| - J) / 16)
    assert leg.jb.stats.jitter_ms == pytest.approx(delay_ms, rel=1e-3)
    assert leg.jb.stats.to_dict()["jitter_ms"] == pytest.approx(delay_ms, rel=1e-3)


def test_a_stream_continued_in_another_process_lands_by_its_timestamps() -> None:
    """Restart in place: the new buffer, seeded with where the old one placed the stream, places
    the packets after the downtime sample-exact, whenever they arrive, and counts no loss for
    what it never saw."""
    before = Leg(depth=0.06)
    stream(before, list(range(10)), ts0=5000)
    saved = before.jb.timeline()
    assert saved is not None and saved["seq"] == 9 and saved["ts"] == 5000 + 9 * TICKS
    after = Leg(depth=0.06)
    after.jb.continue_timeline(saved, now=103.0)
    # 150 packets later (3 s of downtime), arriving 0.3 s late (a busy process just started)
    stream(after, list(range(160, 170)), ts0=5000, t0=100.5 + 0.3)
    after.jb.flush()
    first_position = dict(before.played)[0]
    assert after.positions() == [first_position + k * TICKS for k in range(160, 170)]
    assert after.jb.stats.lost == 0


def test_a_new_stream_after_a_continued_one_is_placed_where_it_arrives() -> None:
    after = Leg(depth=0.06)
    after.jb.continue_timeline({"ssrc": 1, "seq": 9, "ts": 6440, "pos": 4000, "rate": RATE}, 101.0)
    for k in range(6):  # a new fork: another SSRC, adopted on its second packet
        after.push(k, 90_000 + k * TICKS, 103.0 + k * PTIME, ssrc=2)
    after.jb.flush()
    assert after.positions()[0] == round((103.0 - 100.0) * RATE)
