"""Running a real media_ingest instance in the test's loop: real Redis, real UDP, real WebSocket,
the fake Telnyx API through the real SDK. Helpers to drive it and read what it publishes."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import telnyx
from redis.asyncio import Redis

from media_ingest.app import create_app
from media_ingest.main import build_service
from media_ingest.service import IngestService
from media_ingest.settings import IngestSettings
from telnyx_simulator.payloads import event as webhook_event
from telnyx_simulator.serve import serve
from tests.conftest import API_KEY
from tests.media_ingest.test_ports import free_range
from voicetap_common.serving import WorkFailure
from voicetap_common.settings import access_settings
from voicetap_sdk import codec
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import (
    COMMAND_RESULTS,
    MEDIA_COMMANDS,
    RECORDING_COMPLETED,
    telnyx_topic,
)


def ingest_settings(
    tmp_path: Path, redis_url: str, fake_url: str, *, pairs: int = 4, **overrides: Any
) -> IngestSettings:
    ports = free_range(pairs)
    values: dict[str, Any] = dict(
        redis_url=redis_url,
        voicetap_data_dir=tmp_path,
        telnyx_api_key=API_KEY,
        telnyx_base_url=f"{fake_url}/v2",
        telnyx_max_retries=0,
        ingest_rtp_host="127.0.0.1",
        ingest_public_host="127.0.0.1",
        ingest_rtp_ports=f"{ports.start}-{ports.stop - 1}",
        ingest_analytics_interval_seconds=0.5,
        ingest_port_lease_seconds=3,
    )
    values.update(overrides)
    return IngestSettings(**values)


@contextlib.asynccontextmanager
async def running(
    settings: IngestSettings, client: telnyx.AsyncTelnyx | None = None
) -> AsyncIterator[tuple[IngestService, str]]:
    """An instance, started, with its HTTP/WebSocket app served on a free port (base URL yielded)."""
    service = build_service(settings, client)
    failure = WorkFailure()
    app = create_app(service, failure, access_settings(settings))
    async with serve(app) as url:  # its lifespan runs the instance
        await asyncio.wait_for(service.playback_ready.wait(), 5)
        yield service, url
    assert failure.error is None, failure.message("the instance's background work")


async def wait_for(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def topic_events(redis: Redis, topic: str) -> list[dict[str, Any]]:
    return [codec.loads(fields[b"event"]) for _, fields in await redis.xrange(topic)]


async def at_least(
    events: Awaitable[list[dict[str, Any]]], count: int
) -> list[dict[str, Any]] | None:
    """``events`` once there are ``count`` of them (a ``wait_for`` predicate)."""
    value = await events
    return value if len(value) >= count else None


async def publish_command(redis: Redis, command: dict[str, Any]) -> str:
    await Producer(redis, 10_000).publish(
        MEDIA_COMMANDS,
        command["id"],
        command["action"],
        codec.dumps(command),
        call_control_id=command["call_control_id"],
    )
    return command["id"]


async def command_result(redis: Redis, command_id: str, timeout: float = 15.0) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for result in await topic_events(redis, COMMAND_RESULTS):
            if result["command_id"] == command_id:
                return result
        return None

    return await wait_for(find, timeout, f"result of {command_id}")


async def run_command(
    redis: Redis, action: str, call_control_id: str, **params: Any
) -> dict[str, Any]:
    command_id = f"{action}-{time.monotonic_ns()}"
    await publish_command(
        redis, {"id": command_id, "action": action, "call_control_id": call_control_id, **params}
    )
    return await command_result(redis, command_id)


async def publish_webhook(
    redis: Redis, event_type: str, call_control_id: str, *, occurred_at: datetime | str | None = None, handled: bool = False,
    partitions: int = 1, **payload: Any,
) -> dict[str, Any]:  # fmt: skip
    """Publish a webhook as the gateway would (``occurred_at`` now unless given: a string is sent as
    it is; to the call's partition with ``partitions`` above 1); with ``handled``, return once the
    ingest group has handled and acknowledged it."""
    data = webhook_event(
        event_type,
        {"call_control_id": call_control_id, **payload},
        occurred_at if isinstance(occurred_at, datetime) else datetime.now(UTC),
    )
    if isinstance(occurred_at, str):
        data["occurred_at"] = occurred_at
    body = codec.dumps(
        {"data": data, "meta": {"attempt": 1, "delivered_to": "http://test/webhooks"}}
    )
    topic = telnyx_topic(event_type)
    producer = Producer(redis, 10_000, partitions)
    entry_id = await producer.publish(
        topic, data["id"], event_type, body, call_control_id=call_control_id
    )
    if handled:
        stream = producer.stream(topic, call_control_id)
        await wait_for(lambda: acknowledged(redis, stream, entry_id), 10, f"{event_type} handled")
    return data


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def acknowledged(
    redis: Redis, topic: str, entry_id: str, group: str = "media_ingest"
) -> bool:
    """The group has read ``entry_id`` of ``topic`` and acknowledged everything it read there."""
    for info in await redis.xinfo_groups(topic):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            return (
                _stream_id(info["last-delivered-id"]) >= _stream_id(entry_id)
                and info["pending"] == 0
            )
    return False


async def recording_completed(
    redis: Redis, call_control_id: str, timeout: float = 15.0
) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for event in await topic_events(redis, RECORDING_COMPLETED):
            if event["call_control_id"] == call_control_id:
                return event
        return None

    return await wait_for(find, timeout, f"recording.completed of {call_control_id}")


def target_port(target: str) -> int:
    return int(target.rsplit(":", 1)[1])


def noise(seconds: float, seed: int, rate: int = 8000) -> np.ndarray:
    """Band-limited noise with a changing level: no two 20 ms frames alike, never all zero."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 1, int(seconds * rate))
    smooth = np.convolve(samples, np.ones(4) / 4, mode="same")
    envelope = 3000 + 2000 * np.sin(np.arange(len(samples)) / rate * 2 * np.pi * 0.7)
    return np.clip(smooth * envelope, -32000, 32000).astype(np.int16)


def locate(channel: np.ndarray, reference: np.ndarray, frame: int = 160) -> int:
    """Index in ``channel`` where ``reference``'s first frame starts, exactly; -1 if nowhere."""
    windows = np.lib.stride_tricks.sliding_window_view(channel, frame)
    hits = np.flatnonzero((windows == reference[:frame]).all(axis=1))
    return int(hits[0]) if len(hits) else -1
