"""The services' consumer metrics: ``voicetap_sdk.consumer.ConsumerMetrics`` on Prometheus counters."""

from prometheus_client import CollectorRegistry, Counter, Histogram


class PrometheusConsumerMetrics:
    """``voicetap_consumer_*`` on ``registry``, labelled by group and topic."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "voicetap_consumer_entries_total",
            "Entries handled and acknowledged",
            ["group", "topic"],
            registry=registry,
        )
        self.failed = Counter(
            "voicetap_consumer_failures_total",
            "Entries whose handling raised",
            ["group", "topic"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "voicetap_consumer_dead_letters_total",
            "Entries sent to the dead-letter topic",
            ["group", "topic"],
            registry=registry,
        )
        self.claimed = Counter(
            "voicetap_consumer_claimed_total",
            "Idle entries claimed from other consumers",
            ["group", "topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "voicetap_consumer_batch_seconds",
            "Time to handle and acknowledge one batch",
            ["group"],
            registry=registry,
        )

    def entries_handled(self, group: str, topic: str, count: int) -> None:
        self.handled.labels(group, topic).inc(count)

    def entry_failed(self, group: str, topic: str) -> None:
        self.failed.labels(group, topic).inc()

    def entry_dead_lettered(self, group: str, topic: str) -> None:
        self.dead_lettered.labels(group, topic).inc()

    def entries_claimed(self, group: str, topic: str, count: int) -> None:
        self.claimed.labels(group, topic).inc(count)

    def batch_handled(self, group: str, seconds: float) -> None:
        self.batch_seconds.labels(group).observe(seconds)
