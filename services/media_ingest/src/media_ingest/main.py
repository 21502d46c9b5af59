"""``voicetap ingest``: one media_ingest instance on uvloop (UDP receivers, WebSocket, HTTP), or
with ``INGEST_WORKERS`` above 1 the supervisor of that many (``workers``).

The composition root: settings read once (a bad one is one line and exit 2), logging, the app
built from plain values taken from the settings, uvicorn run with the app's lifespan (which runs
the instance). Stops cleanly on SIGTERM or SIGINT: the consumer stops, every call's recording is
completed and spooled (uploaded and announced when the store answers in time, else on the next start), ports are released. A SIGKILL leaves recordings that the next start
repairs.
"""

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from media_ingest.app import create_app
from media_ingest.commands import MediaTargets
from media_ingest.config import IngestConfig, Ports, Recording, Topics
from media_ingest.endings import Timeouts
from media_ingest.host import HostShare
from media_ingest.protocol.codecs import parse_payload_map
from media_ingest.service import BLOCK_MS, IngestService
from media_ingest.settings import IngestSettings
from media_ingest.worker_plan import worker_count
from voicetap_common.access import Access
from voicetap_common.call_control import telnyx_client
from voicetap_common.logs import configure_logging
from voicetap_common.recordings_store import RecordingsStore, StoreError
from voicetap_common.serving import WorkFailure, serve_until, until_signalled
from voicetap_common.settings import access_settings, load_settings, refuse_open_bind
from voicetap_sdk.consumer import default_consumer_name
from voicetap_sdk.redis_client import connect

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx


def main() -> None:
    settings, access = load(IngestSettings)
    workers = worker_count(settings.ingest_workers, os.cpu_count())
    if workers > 1:
        from media_ingest.workers import supervise

        sys.exit(supervise(settings, workers))
    serve(settings, access)


def load(kind: type[IngestSettings]) -> tuple[IngestSettings, Access]:
    """The settings (a bad one is one line and exit 2), logging, and the access they allow."""
    settings = load_settings(kind, "voicetap ingest")
    configure_logging("media_ingest", settings.log_level, settings.log_format)
    access = access_settings(settings)
    refuse_open_bind(
        settings.ingest_host,
        access.tokens,
        access.insecure_no_auth,
        "voicetap ingest",
        "INGEST_HOST",
    )
    return settings, access


def serve(settings: IngestSettings, access: Access, host: HostShare | None = None) -> None:
    """Run the instance until a signal; ``host``: as one worker of a host (``media_ingest.worker``)."""

    async def run(stop: asyncio.Event) -> None:
        failure = WorkFailure()
        try:
            service = build_service(settings)  # in the loop: its clients belong to it
        except StoreError as exc:
            sys.exit(f"voicetap ingest: VOICETAP_RECORDINGS_URL cannot be used: {exc}")
        siblings = None if host is None else host.siblings(service.redis, service.instance)
        app = create_app(service, failure, access, settings.voicetap_console_url, siblings)
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
        sockets = None if host is None else host.sockets(settings.ingest_host, settings.ingest_port)
        await serve_until(server, stop, failure, sockets)
        if failure.error is not None:
            sys.exit(failure.message("voicetap ingest"))
        if not server.started:  # the lifespan failed (logged by uvicorn): not a clean exit
            sys.exit("voicetap ingest: could not start (see the error above)")

    uvloop.run(until_signalled(run))


def build_service(settings: IngestSettings, client: "AsyncTelnyx | None" = None) -> IngestService:
    """The instance the settings describe; ``client``: a Telnyx SDK client to use (and leave
    open) instead of one made from the settings. Raises StoreError when the recordings store
    cannot be opened (a ``file://`` directory that cannot be created)."""
    owns_client = client is None and settings.telnyx_api_key is not None
    return IngestService(
        ingest_config(settings),
        store=RecordingsStore(settings.store_config(settings.voicetap_data_dir)),
        redis=connect(
            settings.redis_url,
            cluster=settings.redis_cluster,
            timeout_seconds=settings.redis_timeout_seconds,
            blocking_ms=BLOCK_MS,
        ),
        client=telnyx_client(settings) if owns_client else client,
        owns_client=owns_client,
    )


def ingest_config(settings: IngestSettings) -> IngestConfig:
    s = settings
    dynamic = s.ingest_dynamic_payload_types
    return IngestConfig(
        instance=s.ingest_instance_id or default_consumer_name(),
        data_dir=s.voicetap_data_dir,
        mode=s.ingest_mode,
        redis_timeout=s.redis_timeout_seconds,
        recording=Recording(
            sample_rate=s.ingest_recording_rate,
            jitter_ms=s.ingest_jitter_ms,
            interval=s.ingest_analytics_interval_seconds,
            publish_audio=s.ingest_publish_audio,
            dynamic_payload_types=parse_payload_map(dynamic) if dynamic else None,
            spool_bound=s.ingest_spool_max_recordings,
            upload_concurrency=s.ingest_upload_concurrency,
        ),
        topics=Topics(
            maxlen=s.topic_maxlen,
            partitions=s.topic_partitions,
            analytics_maxlen=s.ingest_analytics_maxlen,
            audio_maxlen=s.ingest_audio_maxlen,
            event_queue=s.ingest_event_queue,
        ),
        ports=Ports(
            bind_host=s.ingest_rtp_host,
            ports=s.rtp_port_range(),
            lease_seconds=s.ingest_port_lease_seconds,
            takeover_seconds=s.ingest_takeover_seconds,
        ),
        targets=MediaTargets(
            public_host=s.ingest_public_host,
            public_url=s.ingest_public_url,
            stream_codec=s.ingest_stream_codec,
            bidirectional_mode=s.ingest_stream_bidirectional_mode,
        ),
        timeouts=Timeouts(
            media=s.ingest_media_timeout_seconds, paused=s.ingest_paused_timeout_seconds
        ),
    )


if __name__ == "__main__":
    main()
