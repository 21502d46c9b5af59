"""``voicetap ingest``: one media_ingest instance on uvloop (UDP receivers, WebSocket, HTTP).

Stops cleanly on SIGTERM or SIGINT: the consumer stops, every call's recording is completed and
announced, ports are released. A SIGKILL leaves recordings that the next start repairs.
"""

import asyncio
import signal
import sys

import uvicorn
import uvloop
from pydantic import ValidationError

from media_ingest.app import create_app
from media_ingest.service import IngestService
from media_ingest.settings import IngestSettings
from voicetap_common.logs import configure_logging


async def run(settings: IngestSettings, stop: asyncio.Event) -> None:
    service = IngestService(settings)
    await service.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service),
            host=settings.ingest_host,
            port=settings.ingest_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets",
            ws_ping_interval=settings.ingest_ws_ping_seconds,
            ws_ping_timeout=settings.ingest_ws_ping_seconds,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
    )

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_server())
    try:
        await server.serve()  # returns on SIGTERM/SIGINT (uvicorn catches them) or once stop is set
    finally:
        watcher.cancel()
        await service.stop()


async def _main(settings: IngestSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> None:
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        sys.exit(f"voicetap ingest: invalid settings:\n{exc}")
    configure_logging("media_ingest", settings.log_level, settings.log_format)
    uvloop.run(_main(settings))


if __name__ == "__main__":
    main()
