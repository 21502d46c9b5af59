"""``voicetap indexer``: the consumers, the completion sweeper and the query API in one process.

Settings are read once here; the app is served by uvicorn on uvloop (the loop's own overhead was a
third of the CPU on asyncio), and stops cleanly on SIGTERM or SIGINT: the API stops accepting,
the lifespan lets the loops finish (or abandon, unacknowledged) their batch, connections close.
"""

import sys
from datetime import timedelta
from functools import partial

import uvicorn
import uvloop
from starlette.applications import Starlette

from transcript_indexer.app import (
    STOP_GRACE_SECONDS,
    AutoTranscription,
    ErasureOptions,
    create_app,
)
from transcript_indexer.consumer import GROUP, TOPICS
from transcript_indexer.settings import IndexerSettings
from transcript_indexer.storage import create_storage
from voicetap_common.call_control import telnyx_client
from voicetap_common.logs import configure_logging
from voicetap_common.recordings_store import RecordingsStore, StoreError
from voicetap_common.serving import WorkFailure, serve_until, until_signalled
from voicetap_common.settings import access_settings, load_settings, refuse_open_bind
from voicetap_sdk.consumer import ConsumerOptions, default_consumer_name


def build_app(settings: IndexerSettings, failure: WorkFailure | None = None) -> Starlette:
    """The app, its arguments taken from ``settings`` (the only place that reads them); its
    background work reports a failure for good to ``failure``. Raises StoreError when the
    recordings store cannot be opened."""
    return create_app(
        storage=create_storage(
            settings.indexer_database_url,
            settings.voicetap_data_dir,
            sqlite_busy_timeout_ms=settings.indexer_sqlite_busy_timeout_ms,
            pg_pool_size=settings.indexer_pg_pool_size,
        ),
        redis_url=settings.redis_url,
        redis_cluster=settings.redis_cluster,
        redis_timeout_seconds=settings.redis_timeout_seconds,
        reading=ConsumerOptions(
            group=GROUP,
            topics=TOPICS,
            consumer=settings.indexer_consumer_name or default_consumer_name(),
            start=settings.indexer_start,
            batch_size=settings.indexer_batch_size,
            block_ms=settings.indexer_block_ms,
            claim_idle_ms=settings.indexer_claim_idle_ms,
            claim_interval_s=settings.indexer_claim_interval_seconds,
            max_deliveries=settings.indexer_max_deliveries,
            partitions=settings.topic_partitions,
        ),
        consumers=settings.indexer_consumers,
        topic_maxlen=settings.topic_maxlen,
        settle_seconds=settings.indexer_settle_seconds,
        live_maxlen=settings.indexer_live_maxlen,
        live_ttl_seconds=settings.indexer_live_ttl_seconds,
        sse_keepalive_seconds=settings.indexer_sse_keepalive_seconds,
        telnyx_client=partial(telnyx_client, settings),
        auto_transcription=AutoTranscription(
            settings.indexer_transcription_engine, settings.indexer_transcription_tracks
        )
        if settings.indexer_auto_transcribe
        else None,
        access=access_settings(settings, settings.indexer_api_token),
        public_ingest_url=settings.voicetap_public_ingest_url,
        public_indexer_url=settings.voicetap_public_indexer_url,
        failure=failure or WorkFailure(),
        console_url=settings.voicetap_console_url,
        erasure=ErasureOptions(
            tombstone_seconds=settings.voicetap_tombstone_seconds,
            timeout_seconds=settings.indexer_erasure_timeout_seconds,
            retention=timedelta(days=settings.voicetap_retention_days)
            if settings.voicetap_retention_days is not None
            else None,
            retention_interval_seconds=settings.indexer_retention_interval_seconds,
            retention_batch_size=settings.indexer_retention_batch_size,
        ),
        recordings=RecordingsStore(settings.store_config(settings.voicetap_data_dir)),
    )


def main() -> None:
    settings = load_settings(IndexerSettings, "voicetap indexer")
    configure_logging("transcript_indexer", settings.log_level, settings.log_format)
    access = access_settings(settings, settings.indexer_api_token)
    refuse_open_bind(
        settings.indexer_host,
        access.tokens,
        access.insecure_no_auth,
        "voicetap indexer",
        "INDEXER_HOST",
    )
    failure = WorkFailure()
    try:
        app = build_app(settings, failure)
    except StoreError as exc:
        sys.exit(f"voicetap indexer: VOICETAP_RECORDINGS_URL cannot be used: {exc}")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.indexer_host,
            port=settings.indexer_port,
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=int(STOP_GRACE_SECONDS),
        )
    )
    # Signals set one stop event (uvicorn re-raises the one it caught), so SIGTERM exits 0.
    uvloop.run(until_signalled(partial(serve_until, server, failure=failure)))
    if failure.error is not None:
        sys.exit(failure.message("voicetap indexer"))


if __name__ == "__main__":
    main()
