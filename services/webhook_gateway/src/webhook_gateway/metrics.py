"""The gateway's Prometheus metrics."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhooks = Counter(
            "voicetap_gateway_webhooks_total",
            "Webhooks by outcome: published, duplicate, erased (a late event of an erased call), or the refusal (unauthorized, too_large, malformed, unavailable)",
            ["outcome"],
            registry=registry,
        )
        self.published = Counter(
            "voicetap_gateway_events_published_total",
            "Events stored on a topic, by event type",
            ["event_type"],
            registry=registry,
        )
        self.latency = Histogram(
            "voicetap_gateway_request_seconds",
            "Time from the request's arrival to the answer",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
            registry=registry,
        )
        self.batch_size = Gauge(
            "voicetap_gateway_last_batch_size",
            "Webhooks that shared the last Redis round trip",
            registry=registry,
        )
        self.redis_up = Gauge(
            "voicetap_gateway_redis_up", "1 when the last Redis call succeeded", registry=registry
        )
        self.trimmed = Counter(
            "voicetap_gateway_topic_entries_trimmed_total",
            "Entries dropped from topics for being older than TOPIC_MAX_AGE_SECONDS, by topic",
            ["topic"],
            registry=registry,
        )

        self.telnyx_topics = Gauge(
            "voicetap_gateway_telnyx_topics",
            "Distinct telnyx.* topics this process has published to (a sudden rise: event types "
            "nobody reads)",
            registry=registry,
        )

    def count_trimmed(self, trimmed: dict[str, int]) -> None:
        for topic, count in trimmed.items():
            self.trimmed.labels(topic).inc(count)
