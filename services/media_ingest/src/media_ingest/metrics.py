"""media_ingest's Prometheus metrics, on the service's own registry.

Per-packet counts are plain integers on the calls (a Prometheus ``Counter.inc`` per packet would
cost more than parsing the packet); :class:`MediaCollector` sums them when ``/metrics`` is scraped.
"""

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LEG_COUNTERS = (
    "received",
    "lost",
    "duplicated",
    "reordered",
    "late",
    "decode_errors",
    "unsupported",
    "malformed",
    "foreign",
)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_published = Counter(
            "voicetap_ingest_events_published_total",
            "Media events written to Redis",
            ["topic"],
            registry=registry,
        )
        self.events_dropped = Counter(
            "voicetap_ingest_events_dropped_total",
            "Media events dropped because the queue to Redis was full",
            ["topic"],
            registry=registry,
        )
        self.calls_started = Counter(
            "voicetap_ingest_calls_started_total",
            "Calls whose media this instance started to record",
            ["media"],
            registry=registry,
        )
        self.calls_finished = Counter(
            "voicetap_ingest_calls_finished_total",
            "Recordings completed, by reason",
            ["reason"],
            registry=registry,
        )
        self.ports_exhausted = Counter(
            "voicetap_ingest_ports_exhausted_total",
            "Forks refused because every port pair was in use",
            registry=registry,
        )
        self.streams_refused = Counter(
            "voicetap_ingest_streams_refused_total",
            "Media-stream WebSockets refused (bad or missing token, unknown call)",
            registry=registry,
        )
        self.commands = Counter(
            "voicetap_ingest_call_control_total",
            "Call Control requests sent, by action and outcome",
            ["action", "outcome"],
            registry=registry,
        )
        self.forwarded = Counter(
            "voicetap_ingest_forwarded_total",
            "Entries forwarded to the instance holding the call",
            ["topic"],
            registry=registry,
        )


class MediaCollector(Collector):
    """Gauges and counters computed from the live calls and the port allocator at scrape time."""

    def __init__(
        self,
        active_calls: Callable[[], int],
        legs: Callable[[], Iterator[tuple[str, dict[str, int], float | None]]],
        ports: Callable[[], tuple[int, int]],
    ) -> None:
        self._active = active_calls
        self._legs = legs
        self._ports = ports
        self._last: tuple[float, int] | None = None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "voicetap_ingest_active_calls",
            "Calls whose media this instance is recording",
            value=self._active(),
        )
        totals: dict[str, dict[str, int]] = {}
        jitters: list[float] = []
        for leg, counts, jitter in self._legs():
            into = totals.setdefault(leg, dict.fromkeys(LEG_COUNTERS, 0))
            for name in LEG_COUNTERS:
                into[name] += counts.get(name, 0)
            if jitter is not None:
                jitters.append(jitter)
        names = {
            "received": (
                "voicetap_ingest_packets_total",
                "RTP packets (or WebSocket media frames) received",
            ),
            "lost": (
                "voicetap_ingest_packets_lost_total",
                "Packets never received within the jitter depth",
            ),
            "duplicated": ("voicetap_ingest_packets_duplicated_total", "Duplicate packets dropped"),
            "reordered": ("voicetap_ingest_packets_reordered_total", "Packets put back in order"),
            "late": (
                "voicetap_ingest_packets_late_total",
                "Packets that came after being declared lost",
            ),
            "decode_errors": (
                "voicetap_ingest_decode_errors_total",
                "Payloads the codec could not decode",
            ),
            "unsupported": (
                "voicetap_ingest_unsupported_packets_total",
                "Packets of a payload type with no decoder",
            ),
            "malformed": (
                "voicetap_ingest_malformed_packets_total",
                "Datagrams that were not valid RTP, dropped",
            ),
            "foreign": (
                "voicetap_ingest_foreign_packets_total",
                "Datagrams from a source other than the latched one, dropped",
            ),
        }
        for key, (name, doc) in names.items():
            family = CounterMetricFamily(name, doc, labels=["leg"])
            for leg, counts in sorted(totals.items()):
                family.add_metric([leg], counts[key])
            yield family
        received = sum(c["received"] for c in totals.values())
        now = time.monotonic()
        rate = 0.0
        if self._last is not None and now > self._last[0]:
            rate = max(received - self._last[1], 0) / (now - self._last[0])
        self._last = (now, received)
        yield GaugeMetricFamily(
            "voicetap_ingest_packets_per_second",
            "Packets received per second since the previous scrape",
            value=rate,
        )
        jitter_family = GaugeMetricFamily(
            "voicetap_ingest_jitter_seconds",
            "RFC 3550 interarrival jitter over active legs",
            labels=["stat"],
        )
        jitter_family.add_metric(["max"], max(jitters, default=0.0))
        jitter_family.add_metric(["mean"], sum(jitters) / len(jitters) if jitters else 0.0)
        yield jitter_family
        in_use, capacity = self._ports()
        yield GaugeMetricFamily(
            "voicetap_ingest_port_pairs_in_use", "UDP port pairs held by forked calls", value=in_use
        )
        yield GaugeMetricFamily(
            "voicetap_ingest_port_pairs_capacity",
            "UDP port pairs in this instance's range",
            value=capacity,
        )
