"""``/metrics`` of a host's workers, merged: whichever worker a scrape lands on answers with its own
metrics and each sibling's (``Siblings.metrics``), every sample labelled with its worker and the
families merged (the text format wants each family's samples together, under one TYPE line). A
sibling that does not answer in time is left out and ``voicetap_ingest_worker_up`` says which; a
scrape of one worker alone would show, at random, one N-th of the host. Pure: no I/O here."""

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

LABEL = "worker"


def labelled(families: Iterable[Metric], worker: str) -> list[Metric]:
    """``families`` with ``worker`` added to every sample's labels."""
    out = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [
            Sample(s.name, {**s.labels, LABEL: worker}, s.value, s.timestamp, s.exemplar)
            for s in family.samples
        ]
        out.append(copy)
    return out


def merged(per_worker: dict[str, list[Metric] | None]) -> bytes:
    """One exposition of every worker's families (None: that worker did not answer)."""
    families: dict[str, Metric] = {}
    for worker, found in per_worker.items():
        for family in labelled(found or [], worker):
            kept = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            kept.samples.extend(family.samples)
    up = GaugeMetricFamily(
        "voicetap_ingest_worker_up",
        "1 when the worker's metrics are in this scrape (0: it did not answer)",
        labels=[LABEL],
    )
    for worker, found in per_worker.items():
        up.add_metric([worker], 0.0 if found is None else 1.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([*families.values(), up]))
    return generate_latest(registry)


def parse(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
