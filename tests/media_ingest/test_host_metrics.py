"""The metrics of a host's workers merged into one exposition, labelled by worker."""

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from media_ingest.host_metrics import merged, parse


def worker_registry(calls: int, packets: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("voicetap_ingest_active_calls", "Active calls", registry=registry).set(calls)
    counter = Counter("voicetap_ingest_packets", "Packets", ["leg"], registry=registry)
    counter.labels("inbound").inc(packets)
    return registry


def test_each_family_once_with_every_workers_samples_labelled() -> None:
    own = worker_registry(3, 100)
    sibling = generate_latest(worker_registry(2, 50)).decode()
    text = merged({"h-w0": list(own.collect()), "h-w1": parse(sibling), "h-w2": None}).decode()
    assert text.count("# TYPE voicetap_ingest_active_calls gauge") == 1
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = {s.labels["worker"]: s.value for s in families["voicetap_ingest_active_calls"].samples}
    assert calls == {"h-w0": 3.0, "h-w1": 2.0}
    packets = [
        (s.labels["worker"], s.labels["leg"], s.value)
        for s in families["voicetap_ingest_packets"].samples
        if s.name.endswith("_total")
    ]
    assert sorted(packets) == [("h-w0", "inbound", 100.0), ("h-w1", "inbound", 50.0)]
    up = {s.labels["worker"]: s.value for s in families["voicetap_ingest_worker_up"].samples}
    assert up == {"h-w0": 1.0, "h-w1": 1.0, "h-w2": 0.0}  # h-w2 did not answer
