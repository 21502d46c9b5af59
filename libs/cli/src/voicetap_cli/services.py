"""The services the stack is made of, found through their ``voicetap.services`` entry points.

The command never imports a service: it only knows each by its entry point's name and runs it
as ``python -m voicetap_cli.run NAME`` in its own process.
"""

import sys
from importlib.metadata import EntryPoint, entry_points
from importlib.util import find_spec

GROUP = "voicetap.services"
# Start order of `voicetap up`: the console first (its URL prints first), then the gateway, so
# webhooks are taken as soon as possible.
ORDER = ("console", "gateway", "ingest", "indexer")


def installed_services() -> dict[str, EntryPoint]:
    """The services whose code is installed, in start order."""
    found = {
        ep.name: ep
        for ep in entry_points(group=GROUP)
        if find_spec(ep.module.split(":")[0]) is not None
    }
    return {
        name: found[name]
        for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    }


TOOLS = "voicetap.tools"


def run_tool(name: str, argv: list[str]) -> int:
    """Run a tool package's ``main(argv)`` (the simulator), found by its entry point."""
    found = {ep.name: ep for ep in entry_points(group=TOOLS)}
    if name not in found:
        raise SystemExit(f"voicetap: the {name!r} tool is not installed")
    return int(found[name].load()(argv) or 0)


def run_service(name: str) -> None:
    services = installed_services()
    if name not in services:
        raise SystemExit(
            f"voicetap: no service named {name!r} is installed (have: {', '.join(services) or 'none'})"
        )
    services[name].load()()


def service_command(name: str, *args: str) -> tuple[str, ...]:
    """The argv that runs a service or a tool in a process of its own (``voicetap_cli.run``)."""
    return (sys.executable, "-m", "voicetap_cli.run", name, *args)
