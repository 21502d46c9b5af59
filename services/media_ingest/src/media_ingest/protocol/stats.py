"""Per-leg media statistics, updated in place on the packet path and serialisable to JSON."""

from typing import Any


class LegStats:
    """Counters of one leg; ``jitter`` is RFC 3550 A.8 interarrival jitter in timestamp units."""

    __slots__ = (
        "received",
        "lost",
        "duplicated",
        "reordered",
        "late",
        "discarded",
        "malformed",
        "ssrc_changes",
        "restarts",
        "resyncs",
        "unsupported",
        "decode_errors",
        "late_samples",
        "jitter",
        "clock_rate",
        "codec",
        "sample_rate",
    )

    def __init__(self) -> None:
        self.received = 0  #: packets taken by the jitter buffer (duplicates and late ones included)
        self.lost = 0  #: sequence numbers given up on (never arrived within the depth)
        self.duplicated = 0  #: packets whose sequence number was already played or pending
        self.reordered = 0  #: packets played although one with a higher sequence number came first
        self.late = 0  #: packets that came after their sequence number was declared lost
        self.discarded = 0  #: packets far off the sequence (RFC 3550 A.1 probation) not adopted
        self.malformed = 0  #: datagrams that were not valid RTP (counted by the caller)
        self.ssrc_changes = 0
        self.restarts = 0  #: sequence restarts on the same SSRC
        self.resyncs = 0  #: re-anchorings of the timeline (timestamp jumps, clock drift, hold)
        self.unsupported = 0  #: packets of a payload type with no decoder
        self.decode_errors = 0  #: payloads the decoder refused (played as silence)
        self.late_samples = 0  #: decoded samples that came after the recording had passed them
        self.jitter = 0.0
        self.clock_rate = 0
        self.codec = ""  #: encoding of the last decoded packet
        self.sample_rate = 0  #: its decoded sample rate

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate if self.clock_rate else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        out["jitter"] = round(self.jitter, 3)
        out["jitter_ms"] = round(self.jitter_ms, 3)
        return out
