"""A consumer whose Redis goes away for seconds: two log lines (the outage's start, and its end
with its length), not one per retry, no traceback, and consumption resumes by itself.

The Redis is the test's own embedded server (the session's cannot be stopped and started)."""

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from voicetap_cli.embedded_redis import EmbeddedRedis
from voicetap_common.consumer_metrics import PrometheusConsumerMetrics
from voicetap_sdk.consumer import ConsumerOptions, StreamConsumer
from voicetap_sdk.streams import Entry, Producer

TOPIC = "test.outage"
OUTAGE_SECONDS = 5.0


@pytest.mark.slow
async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    redis = Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=1)
    producer = Producer(redis, 10_000)
    seen: list[str] = []

    async def handle(entries: list[Entry]) -> None:
        seen.extend(e.event_id for e in entries)

    options = ConsumerOptions(group="g", topics=[TOPIC], consumer="c1", block_ms=100)
    consumer = StreamConsumer(
        redis, producer, options, handle, PrometheusConsumerMetrics(CollectorRegistry())
    )
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="voicetap.consumer")
    running = asyncio.create_task(consumer.run(stop))
    try:
        await producer.publish(TOPIC, "before", "test", b"{}")
        await until(lambda: seen == ["before"])

        server.stop()
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not running.done(), "an outage must never end the consumer"
        server.start()
        await producer.publish(TOPIC, "after", "test", b"{}")
        await until(lambda: seen == ["before", "after"], timeout=15)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await redis.aclose()
        server.stop()

    lines = [r for r in caplog.records if r.name == "voicetap.consumer"]
    messages = [r.getMessage() for r in lines]
    unavailable = [m for m in messages if "unavailable" in m]
    assert len(unavailable) == 1, messages
    assert unavailable[0].startswith(
        "redis (group g, consumer c1, test.outage) unavailable, retrying until it is back: "
    ), messages
    back = [
        m for m in messages if m.startswith("redis (group g, consumer c1, test.outage) back after")
    ]
    assert len(back) == 1, messages
    assert float(back[0].split()[8]) >= OUTAGE_SECONDS - 0.5
    assert not [r for r in lines if r.exc_info], "no traceback for an outage"


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
