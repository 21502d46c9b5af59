"""``voicetap ingest``: one media_ingest instance on uvloop (UDP receivers, WebSocket, HTTP).

The composition root: settings read once (a bad one is one line and exit 2), logging, the app
built, uvicorn run with the app's lifespan (which runs the instance). Stops cleanly on SIGTERM or
SIGINT: the consumer stops, every call's recording is completed and announced, ports are
released. A SIGKILL leaves recordings that the next start repairs.
"""

import asyncio
import sys

import uvicorn
import uvloop

from media_ingest.app import create_app
from media_ingest.service import IngestService
from media_ingest.settings import IngestSettings
from voicetap_common.logs import configure_logging
from voicetap_common.serving import serve_until, until_signalled
from voicetap_common.settings import load_settings


def main() -> None:
    settings = load_settings(IngestSettings, "voicetap ingest")
    configure_logging("media_ingest", settings.log_level, settings.log_format)

    async def run(stop: asyncio.Event) -> None:
        app = create_app(IngestService(settings))  # in the loop: its clients belong to it
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.ingest_host,
                port=settings.ingest_port,
                log_config=None,
                access_log=False,
                lifespan="on",
                ws="websockets-sansio",  # the legacy "websockets" one is deprecated (uvicorn 0.54)
                ws_ping_interval=settings.ingest_ws_ping_seconds,
                ws_ping_timeout=settings.ingest_ws_ping_seconds,
                server_header=False,
                timeout_graceful_shutdown=3,
            )
        )
        await serve_until(server, stop)
        if not server.started:  # the lifespan failed (logged by uvicorn): not a clean exit
            sys.exit("voicetap ingest: could not start (see the error above)")

    uvloop.run(until_signalled(run))


if __name__ == "__main__":
    main()
