"""``voicetap ingest``: one media_ingest instance on uvloop (UDP receivers, WebSocket, HTTP).

Stops cleanly on SIGTERM or SIGINT: the consumer stops, every call's recording is completed and
announced, ports are released. A SIGKILL leaves recordings that the next start repairs.
"""

import asyncio
import sys
from functools import partial

import uvicorn
import uvloop
from pydantic import ValidationError

from media_ingest.app import create_app
from media_ingest.service import IngestService
from media_ingest.settings import IngestSettings
from voicetap_common.logs import configure_logging
from voicetap_common.serving import serve_until, until_signalled


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
            ws="websockets-sansio",  # the legacy "websockets" implementation is deprecated (uvicorn 0.54)
            ws_ping_interval=settings.ingest_ws_ping_seconds,
            ws_ping_timeout=settings.ingest_ws_ping_seconds,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
    )
    try:
        await serve_until(server, stop)
    finally:
        await service.stop()


def main() -> None:
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        sys.exit(f"voicetap ingest: invalid settings:\n{exc}")
    configure_logging("media_ingest", settings.log_level, settings.log_format)
    uvloop.run(until_signalled(partial(run, settings)))


if __name__ == "__main__":
    main()
