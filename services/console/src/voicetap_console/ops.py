"""What ``/ops`` shows: every topic with its groups (lag, pending, consumers), the dead letters,
and whether each service answers its readiness probe."""

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.topics import DLQ_SUFFIX


@dataclass(frozen=True)
class Consumer:
    name: str
    pending: int
    idle_s: float


@dataclass(frozen=True)
class Group:
    name: str
    pending: int
    lag: int | None
    consumers: list[Consumer]


@dataclass(frozen=True)
class Topic:
    name: str
    length: int
    last_age_s: float | None
    groups: list[Group] = field(default_factory=list)

    @property
    def dead_letters(self) -> bool:
        return self.name.endswith(DLQ_SUFFIX)


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    ready: bool
    detail: str


@dataclass(frozen=True)
class Instance:
    """A consumer name seen in the groups: one worker of a service."""

    name: str
    groups: list[str]
    idle_s: float
    pending: int


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def is_topic(name: str) -> bool:
    """A topic or a partition of one; not the per-call live transcripts or other internal keys."""
    return name.startswith(("telnyx.", "voicetap.")) and "{" not in name


async def topics(redis: RedisClient) -> list[Topic]:
    now_ms = time.time() * 1000
    names = sorted({_text(k) async for k in redis.scan_iter(match="*", _type="stream", count=1000)})
    found = []
    for name in filter(is_topic, names):
        info = await redis.xinfo_stream(name)
        last = info.get("last-generated-id") or info.get("last_generated_id")
        last_ms = int(_text(last).split("-")[0]) if last else 0
        groups = []
        for g in await redis.xinfo_groups(name):
            group = _text(g["name"])
            members = await redis.xinfo_consumers(name, group) if int(g["consumers"]) else []
            groups.append(
                Group(
                    name=group,
                    pending=int(g["pending"]),
                    lag=None if g.get("lag") is None else int(g["lag"]),
                    consumers=[
                        Consumer(_text(c["name"]), int(c["pending"]), int(c["idle"]) / 1000)
                        for c in members
                    ],
                )
            )
        found.append(
            Topic(
                name=name,
                length=int(info["length"]),
                last_age_s=(now_ms - last_ms) / 1000 if last_ms else None,
                groups=groups,
            )
        )
    return found


def instances(found: list[Topic]) -> list[Instance]:
    by_name: dict[str, Instance] = {}
    for topic in found:
        for group in topic.groups:
            for c in group.consumers:
                seen = by_name.get(c.name)
                by_name[c.name] = Instance(
                    c.name,
                    sorted({*(seen.groups if seen else []), group.name}),
                    min(c.idle_s, seen.idle_s) if seen else c.idle_s,
                    c.pending + (seen.pending if seen else 0),
                )
    return sorted(by_name.values(), key=lambda i: i.name)


async def services(client: httpx.AsyncClient, urls: dict[str, str]) -> list[Service]:
    async def probe(name: str, url: str) -> Service:
        try:
            response = await client.get(f"{url}/readyz", timeout=2.0)
        except httpx.HTTPError as exc:
            return Service(name, url, False, f"no answer ({type(exc).__name__})")
        if response.status_code == 200:
            return Service(name, url, True, "ready")
        return Service(
            name, url, False, f"not ready ({response.status_code}) {response.text[:200]}"
        )

    return list(await asyncio.gather(*(probe(n, u) for n, u in urls.items())))
