"""How one host's ingest is split into workers (``INGEST_WORKERS``): each worker's name and its
share of ``INGEST_RTP_PORTS``. Pure; ``workers`` runs the plan."""

from dataclasses import dataclass


class PlanError(ValueError):
    """The settings cannot be split as asked; the message is the one line the user sees."""


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    instance: str  # <host>-w<index>: the same after a restart, so the worker resumes its calls
    rtp_ports: range  # contiguous, an even number of ports from an even one: whole rx/tx pairs

    @property
    def rtp_setting(self) -> str:
        """The share as ``INGEST_RTP_PORTS`` spells it."""
        return f"{self.rtp_ports.start}-{self.rtp_ports.stop - 1}"


def worker_count(setting: int, cpu_count: int | None) -> int:
    """``INGEST_WORKERS``, where 0 means one per core."""
    return setting if setting > 0 else max(cpu_count or 1, 1)


def plan_workers(host: str, ports: range, count: int) -> list[WorkerPlan]:
    """``count`` workers named ``<host>-w<k>``, the port pairs of ``ports`` dealt out in
    contiguous shares (the first shares one pair larger when they do not divide evenly)."""
    first = ports.start + ports.start % 2  # pairs start on an even port, as the allocator's do
    pairs = max(ports.stop - first, 0) // 2
    if pairs < count:
        raise PlanError(
            f"INGEST_RTP_PORTS={ports.start}-{ports.stop - 1} holds {pairs} port pair(s) "
            f"(an even port and the next), too few for {count} workers (INGEST_WORKERS): "
            "each needs at least one; widen the range or run fewer workers"
        )
    each, larger = divmod(pairs, count)
    plans, start = [], first
    for index in range(count):
        size = 2 * (each + (index < larger))
        plans.append(WorkerPlan(index, f"{host}-w{index}", range(start, start + size)))
        start += size
    return plans
