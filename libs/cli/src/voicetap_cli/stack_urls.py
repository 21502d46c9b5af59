"""Where each service of the stack answers, and what each address is for: the readiness probe
``voicetap up`` polls, and the block it prints once every service is ready.

The command knows the services only by name (their settings come through entry points); this table
is the one place that says which of a service's settings hold its address and what it serves."""

from dataclasses import dataclass

from pydantic_settings import BaseSettings


@dataclass(frozen=True)
class Endpoint:
    label: str
    url: str
    purpose: str


@dataclass(frozen=True)
class _Served:
    host_setting: str
    port_setting: str
    paths: tuple[tuple[str, str, str], ...]  # label, path, purpose


_SERVED = {
    "console": _Served(
        "console_host",
        "console_port",
        (("console", "/", "live calls, each call's recording and transcript, search, operations"),),
    ),
    "gateway": _Served(
        "gateway_host",
        "gateway_port",
        (
            (
                "webhooks",
                "/webhooks/telnyx",
                "give Telnyx this path at your public HTTPS address (Call Control application)",
            ),
        ),
    ),
    "ingest": _Served(
        "ingest_host",
        "ingest_port",
        (
            (
                "recordings",
                "/calls/<call_control_id>/recording.wav",
                "each call's recording (caller left, callee right)",
            ),
        ),
    ),
    "indexer": _Served(
        "indexer_host",
        "indexer_port",
        (
            ("calls", "/calls", "query API: calls, /calls/<id>/transcript?format=txt"),
            ("search", "/search?q=<words>", "search the transcripts"),
        ),
    ),
}


def base_url(service: str, settings: BaseSettings) -> str | None:
    """``http://host:port`` of a service as reached from this machine, or ``None`` when it serves
    nothing known or on a port chosen at start (port 0)."""
    served = _SERVED.get(service)
    if served is None:
        return None
    port = int(getattr(settings, served.port_setting))
    if port == 0:
        return None
    host = str(getattr(settings, served.host_setting))
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def readiness_url(service: str, settings: BaseSettings) -> str | None:
    base = base_url(service, settings)
    return None if base is None else f"{base}/readyz"


def endpoints(service: str, settings: BaseSettings) -> list[Endpoint]:
    """What the service serves that a user opens, its metrics last."""
    base = base_url(service, settings)
    if base is None:
        return []
    served = _SERVED[service]
    return [Endpoint(label, base + path, purpose) for label, path, purpose in served.paths] + [
        Endpoint("metrics", f"{base}/metrics", f"Prometheus metrics of the {service}")
    ]


def ready_block(found: list[Endpoint], redis_url: str) -> str:
    """The lines ``voicetap up`` prints when every service answers ``/readyz``."""
    width = max([len(e.url) for e in found] + [len(redis_url)])
    lines = ["voicetap is ready:"]
    lines += [f"  {e.label:<10} {e.url:<{width}}  {e.purpose}" for e in found]
    lines.append(
        f"  {'topics':<10} {redis_url:<{width}}  Redis Streams (`voicetap topics`, `voicetap tail`)"
    )
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)
