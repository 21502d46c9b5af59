"""``voicetap topics``: every topic with its length, time span, groups, pending and lag.

One row per stream: with ``TOPIC_PARTITIONS`` above 1 each partition ``<topic>:p<k>`` is a row of
its own, since a partition's lag is what an autoscaler sees and a hot partition should show.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from voicetap_common.command_line import voicetap_command
from voicetap_sdk.redis_client import SyncRedisClient
from voicetap_sdk.topics import is_internal


@dataclass(frozen=True)
class GroupRow:
    name: str
    consumers: int
    pending: int
    lag: int | None


@dataclass(frozen=True)
class TopicRow:
    name: str
    length: int
    first: datetime | None
    last: datetime | None
    groups: list[GroupRow]


def _entry_time(entry_id: bytes | str | None) -> datetime | None:
    if not entry_id:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return datetime.fromtimestamp(int(text.split("-")[0]) / 1000, UTC)


def stream_names(redis: SyncRedisClient, pattern: str = "*", *, internal: bool) -> list[str]:
    """The streams matching ``pattern``, sorted, on every primary of a cluster (its SCAN visits
    each); voicetap's internal streams only with ``internal``."""
    names = (
        key.decode() if isinstance(key, bytes) else str(key)
        for key in redis.scan_iter(match=pattern, _type="stream", count=1000)
    )
    return sorted(name for name in names if internal or not is_internal(name))


def list_topics(
    redis: SyncRedisClient, pattern: str = "*", *, internal: bool = False
) -> list[TopicRow]:
    """Every topic matching ``pattern`` (and internal stream, with ``internal``)."""
    rows = []
    for key in stream_names(redis, pattern, internal=internal):
        info = redis.xinfo_stream(key)
        groups = [
            GroupRow(
                name=g["name"].decode() if isinstance(g["name"], bytes) else g["name"],
                consumers=int(g["consumers"]),
                pending=int(g["pending"]),
                lag=None if g.get("lag") is None else int(g["lag"]),
            )
            for g in redis.xinfo_groups(key)
        ]
        rows.append(
            TopicRow(
                name=key,
                length=int(info["length"]),
                first=_entry_time(info["first-entry"][0] if info.get("first-entry") else None),
                last=_entry_time(info["last-entry"][0] if info.get("last-entry") else None),
                groups=groups,
            )
        )
    return rows


def render(rows: list[TopicRow]) -> str:
    if not rows:
        return (
            "no topics yet: they appear with the first event "
            f"(play a call with `{voicetap_command('simulate')}`)"
        )

    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"

    table = [("TOPIC", "LENGTH", "FIRST", "LAST", "GROUP", "CONSUMERS", "PENDING", "LAG")]
    for row in rows:
        groups: list[GroupRow | None] = list(row.groups) or [None]
        for i, group in enumerate(groups):
            head = (
                (row.name, str(row.length), when(row.first), when(row.last))
                if i == 0
                else ("", "", "", "")
            )
            tail = (
                (
                    group.name,
                    str(group.consumers),
                    str(group.pending),
                    "?" if group.lag is None else str(group.lag),
                )
                if group
                else ("-", "", "", "")
            )
            table.append(head + tail)
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    )
