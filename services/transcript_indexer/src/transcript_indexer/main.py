"""``voicetap indexer``: the consumer, the completion sweeper and the query API in one process.

Stops cleanly on SIGTERM or SIGINT: the API stops accepting, the consumer finishes (or abandons,
unacknowledged) its batch, and connections close.
"""

import asyncio
import logging
from functools import partial

import uvicorn
import uvloop
from prometheus_client import CollectorRegistry

from transcript_indexer.app import create_app
from transcript_indexer.completion import Completer
from transcript_indexer.consumer import GROUP, Indexer, consumer_options
from transcript_indexer.control import EXECUTED_BY, TelnyxCommands, TranscriptionStarter
from transcript_indexer.live import LiveFeed
from transcript_indexer.settings import IndexerSettings
from transcript_indexer.storage import create_storage
from transcript_indexer.storage.base import Storage, StorageUnavailable
from voicetap_common.command_runner import CommandRunner
from voicetap_common.commands import TRANSCRIPTION_ACTIONS, TRANSCRIPTION_COMMANDS
from voicetap_common.consumer import ConsumerMetrics, ConsumerOptions, StreamConsumer
from voicetap_common.logs import configure_logging
from voicetap_common.redis_client import connect
from voicetap_common.serving import serve_until, sleep_or_stop, until_signalled
from voicetap_common.streams import Producer

log = logging.getLogger("voicetap.transcript_indexer")

STOP_GRACE_SECONDS = 5.0


async def _open_storage(storage: Storage, stop: asyncio.Event) -> bool:
    """Open (and migrate) the database, waiting out an outage; false when stopped first."""
    backoff = 0.5
    while not stop.is_set():
        try:
            await storage.open()
            return True
        except StorageUnavailable as exc:
            log.warning(
                "database unavailable at start, retrying",
                extra={"error": str(exc), "backoff_s": backoff},
            )
            await sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 10.0)
    return False


async def run(settings: IndexerSettings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set (or the API server exits)."""
    if settings.indexer_auto_transcribe and settings.telnyx_api_key is None:
        raise SystemExit("INDEXER_AUTO_TRANSCRIBE needs TELNYX_API_KEY")
    storage = create_storage(settings)
    if not await _open_storage(storage, stop):
        return
    keepalive_ms = int(settings.indexer_sse_keepalive_seconds * 1000)
    redis = connect(settings, blocking_ms=max(settings.indexer_block_ms, keepalive_ms))
    registry = CollectorRegistry()
    producer = Producer(redis, settings.topic_maxlen, settings.topic_partitions)
    live = LiveFeed(redis, settings.indexer_live_maxlen, settings.indexer_live_ttl_seconds)
    commands = TelnyxCommands(settings, registry)
    starter = (
        TranscriptionStarter(
            commands,
            redis,
            producer,
            settings.indexer_transcription_engine,
            settings.indexer_transcription_tracks,
        )
        if settings.indexer_auto_transcribe
        else None
    )
    indexer = Indexer(storage, live, starter, registry)
    consumer_metrics = ConsumerMetrics(registry)
    consumers = [
        StreamConsumer(
            redis, producer, consumer_options(settings, n), indexer.handle, consumer_metrics
        )
        for n in range(settings.indexer_consumers)
    ]
    consumer = consumers[0]
    runner = CommandRunner(
        redis, producer, commands.execute, executed_by=EXECUTED_BY, actions=TRANSCRIPTION_ACTIONS
    )
    command_options = ConsumerOptions(
        group=GROUP,
        topics=[TRANSCRIPTION_COMMANDS],
        consumer=consumer.consumer_name,
        batch_size=50,
        block_ms=settings.indexer_block_ms,
        claim_idle_ms=settings.indexer_claim_idle_ms,
        claim_interval_s=settings.indexer_claim_interval_seconds,
        max_deliveries=settings.indexer_max_deliveries,
        partitions=settings.topic_partitions,
    )
    command_consumer = StreamConsumer(
        redis, producer, command_options, runner.handle, consumer_metrics
    )
    completer = Completer(
        storage,
        redis,
        live,
        settings.indexer_settle_seconds,
        settings.topic_maxlen,
        settings.topic_partitions,
        registry,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, storage, redis, registry),
            host=settings.indexer_host,
            port=settings.indexer_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    log.info(
        "transcript indexer starting",
        extra={
            "consumer": consumer.consumer_name,
            "port": settings.indexer_port,
            "auto_transcribe": starter is not None,
        },
    )
    workers = [
        *(asyncio.create_task(c.run(stop)) for c in consumers),
        asyncio.create_task(command_consumer.run(stop)),
        asyncio.create_task(completer.run(stop)),
    ]
    try:
        await serve_until(server, stop)
    finally:
        stop.set()
        _, pending = await asyncio.wait(workers, timeout=STOP_GRACE_SECONDS)
        for (
            task
        ) in pending:  # e.g. a batch waiting for a database that is down: left unacknowledged
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await commands.close()
        await redis.aclose()
        await storage.close()
        log.info("transcript indexer stopped")


def main() -> None:
    settings = IndexerSettings()
    configure_logging("transcript_indexer", settings.log_level, settings.log_format)
    uvloop.run(
        until_signalled(partial(run, settings))
    )  # as the gateway and ingest: the loop's own overhead was a third of the CPU
