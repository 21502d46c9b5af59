"""Recordings in an S3-compatible store (a real SeaweedFS): stored and verified before they are
announced, served by any instance with Range and ETag, kept spooled while the store is down and
uploaded once it is back, erased during their upload without leaving an object."""

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from media_ingest.recording.files import spool_path
from telnyx_simulator.audio import CallAudio
from tests.conftest import API_KEY, Fake
from tests.media_ingest.harness import (
    ingest_settings,
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    running,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import send_fork
from tests.media_ingest.test_ports import free_range
from tests.s3_server import SeaweedServer
from voicetap_cli.embedded_redis import EmbeddedRedis, free_port
from voicetap_common.recordings_store import RecordingsStore
from voicetap_sdk.topics import RECORDING_COMPLETED

pytestmark = pytest.mark.slow  # real-time media and a real S3 server


def s3_settings(server: SeaweedServer, prefix: str) -> dict[str, Any]:
    config = server.config(prefix)
    return dict(
        voicetap_recordings_url=config.url,
        aws_endpoint_url_s3=config.endpoint,
        aws_region=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
    )


async def record_call(redis: Redis, fake: Fake, seconds: float = 1.5) -> tuple[str, str]:
    """A forked call with media, not yet hung up: its id and the instance that took it."""
    ccid = fake.state.create_call().call_control_id
    started = await run_command(redis, "fork_start", ccid)
    assert started["ok"], started
    await send_fork(
        CallAudio(noise(seconds, 51), noise(seconds, 52)),
        target_port(started["allocated"]["rx"]),
        target_port(started["allocated"]["tx"]),
        seconds,
    )
    return ccid, started["executed_by"].removeprefix("media_ingest:")


async def completed_events(redis: Redis, ccid: str) -> list[dict[str, Any]]:
    return [
        e for e in await topic_events(redis, RECORDING_COMPLETED) if e["call_control_id"] == ccid
    ]


async def test_any_instance_serves_a_recording_another_one_stored(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path, s3_server: SeaweedServer
) -> None:
    prefix = f"two-{uuid.uuid4().hex[:8]}"
    store = RecordingsStore(s3_server.config(prefix))

    def settings(name: str) -> Any:
        return ingest_settings(
            tmp_path / name, redis_url, fake.url, ingest_instance_id=name,
            **s3_settings(s3_server, prefix),
        )  # fmt: skip

    async with (
        running(settings("ingest-a")) as (a, url_a),
        running(settings("ingest-b")) as (b, url_b),
    ):
        ccid, holder = await record_call(redis, fake)
        await publish_webhook(redis, "call.hangup", ccid)
        event = await recording_completed(redis, ccid)
        other = url_b if holder == "ingest-a" else url_a
        assert event["storage_url"] == store.storage_url(ccid)
        assert event["storage_url"].startswith(f"s3://recordings/{prefix}/")
        digest = await store.digest(ccid)
        assert digest == (event["bytes"], event["sha256"])
        for service in (a, b):  # nothing left in either spool
            assert not spool_path(service.data_dir, ccid).exists()
        async with httpx.AsyncClient(base_url=other) as http:
            whole = await http.get(f"/calls/{ccid}/recording.wav")
            assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
            assert len(whole.content) == event["bytes"]
            assert hashlib.sha256(whole.content).hexdigest() == event["sha256"]
            assert whole.content[:4] == b"RIFF"
            etag = whole.headers["etag"]
            part = await http.get(
                f"/calls/{ccid}/recording.wav", headers={"range": "bytes=44-1043"}
            )
            assert part.status_code == 206 and part.content == whole.content[44:1044]
            assert part.headers["content-range"] == f"bytes 44-1043/{event['bytes']}"
            tail = await http.get(f"/calls/{ccid}/recording.wav", headers={"range": "bytes=-100"})
            assert tail.status_code == 206 and tail.content == whole.content[-100:]
            past = await http.get(
                f"/calls/{ccid}/recording.wav", headers={"range": f"bytes={event['bytes']}-"}
            )
            assert past.status_code == 416
            same = await http.get(f"/calls/{ccid}/recording.wav", headers={"if-none-match": etag})
            assert same.status_code == 304
            missing = await http.get("/calls/v3:never-recorded/recording.wav")
            assert missing.status_code == 404
        assert len(await completed_events(redis, ccid)) == 1


async def test_the_store_down_at_hang_up_keeps_the_recording_spooled_until_it_is_back(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    server = SeaweedServer(tmp_path / "weed")
    server.start()
    try:
        settings = ingest_settings(
            tmp_path / "ingest", redis_url, fake.url, ingest_spool_max_recordings=0,
            **s3_settings(server, "down"),
        )  # fmt: skip
        async with running(settings) as (service, url), httpx.AsyncClient(base_url=url) as http:
            ccid, _ = await record_call(redis, fake)
            server.stop()
            await publish_webhook(redis, "call.hangup", ccid)
            spooled = spool_path(service.data_dir, ccid)
            await wait_for(
                lambda: asyncio.sleep(0, spooled.with_suffix(".event").exists()), 10, "spooled"
            )
            await asyncio.sleep(3)  # uploads are being retried
            assert await completed_events(redis, ccid) == []
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["recordings_spool"] is False
            metrics = (await http.get("/metrics")).text
            assert "voicetap_ingest_recordings_spooled 1.0" in metrics
            oldest = next(
                line for line in metrics.splitlines()
                if line.startswith("voicetap_ingest_recordings_spooled_oldest_seconds ")
            )  # fmt: skip
            assert float(oldest.split()[1]) >= 2.5
            # the holder still serves it from its spool meanwhile
            early = await http.get(f"/calls/{ccid}/recording.wav")
            assert early.status_code == 200 and early.headers["x-voicetap-recording"] == "complete"
            server.start()
            event = await recording_completed(redis, ccid, timeout=40)
            assert event["bytes"] == len(early.content)
            assert event["sha256"] == hashlib.sha256(early.content).hexdigest()
            assert not spooled.exists() and not spooled.with_suffix(".event").exists()
            assert (await http.get("/readyz")).status_code == 200
            metrics = (await http.get("/metrics")).text
            assert "voicetap_ingest_recordings_spooled 0.0" in metrics
            assert "voicetap_ingest_recordings_stored_total 1.0" in metrics
            stored = await http.get(f"/calls/{ccid}/recording.wav")
            assert stored.content == early.content and "etag" in stored.headers
            await asyncio.sleep(1)
            assert len(await completed_events(redis, ccid)) == 1
    finally:
        server.stop()


async def test_a_recording_erased_during_its_upload_leaves_no_object(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    server = SeaweedServer(tmp_path / "weed")
    server.start()
    try:
        settings = ingest_settings(
            tmp_path / "ingest", redis_url, fake.url, **s3_settings(server, "erase")
        )
        async with running(settings) as (service, _):
            ccid, _ = await record_call(redis, fake)
            server.pause()  # the upload hangs in flight
            await publish_webhook(redis, "call.hangup", ccid)
            spooled = spool_path(service.data_dir, ccid)
            await wait_for(
                lambda: asyncio.sleep(0, spooled.with_suffix(".event").exists()), 10, "spooled"
            )
            await asyncio.sleep(0.5)
            # erasure removes the spooled files (and deletes the object, which is not there yet):
            # the upload in flight completes, then finds its recording erased and deletes it
            service.uploads.spool.erase(spooled)
            server.resume()
            store = service.uploads.store
            await asyncio.sleep(3)
            assert await store.head(ccid) is None
            assert await completed_events(redis, ccid) == []
    finally:
        server.stop()


async def test_killed_between_upload_and_event_the_next_start_announces_it_once(
    fake: Fake, tmp_path: Path, s3_server: SeaweedServer
) -> None:
    """SIGKILL while the uploaded recording's event waits for Redis: the next start uploads the
    spooled file again and announces it once; a spool left after the event is not announced twice."""
    cleanup = contextlib.ExitStack()  # whatever happens, both servers stop
    own_redis = EmbeddedRedis(tmp_path / "redis")
    cleanup.callback(own_redis.stop)
    weed = SeaweedServer(tmp_path / "weed")
    cleanup.callback(weed.stop)
    with cleanup:
        await _killed_between_upload_and_event(fake, tmp_path, own_redis, weed)


async def _killed_between_upload_and_event(
    fake: Fake, tmp_path: Path, own_redis: EmbeddedRedis, weed: SeaweedServer
) -> None:
    own_redis.start()
    weed.start()
    redis = Redis.from_url(own_redis.url)
    data_dir = tmp_path / "ingest"
    ports = free_range(2)
    env = {
        **os.environ,
        **weed.env("killed"),
        "REDIS_URL": own_redis.url,
        "VOICETAP_DATA_DIR": str(data_dir),
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_BASE_URL": f"{fake.url}/v2",
        "INGEST_PORT": str(free_port()),
        "INGEST_HOST": "127.0.0.1",
        "INGEST_RTP_HOST": "127.0.0.1",
        "INGEST_PUBLIC_HOST": "127.0.0.1",
        "INGEST_RTP_PORTS": f"{ports.start}-{ports.stop - 1}",
        "INGEST_INSTANCE_ID": "ingest-killed",
        "REDIS_TIMEOUT_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    store = RecordingsStore(weed.config("killed"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_ingest.main", env=env
    )
    try:

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    url = f"http://127.0.0.1:{env['INGEST_PORT']}/readyz"
                    return (await http.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(ready, 30, "the instance to be ready")
        ccid, _ = await record_call(redis, fake)
        spooled = spool_path(data_dir, ccid)
        weed.pause()  # the upload will hang in flight
        await publish_webhook(redis, "call.hangup", ccid)
        await wait_for(
            lambda: asyncio.sleep(0, spooled.with_suffix(".event").exists()), 10, "spooled"
        )
        await redis.aclose()
        own_redis.stop()  # the event cannot be published
        weed.resume()  # the upload completes and verifies
        await wait_for(lambda: store.head(ccid), 30, "the object to be stored")
        await asyncio.sleep(1)  # the event is being retried
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert spooled.exists() and spooled.with_suffix(".event").exists()
    left = {path.name: path.read_bytes() for path in (spooled, spooled.with_suffix(".event"))}
    own_redis.start()
    redis = Redis.from_url(own_redis.url)
    try:
        assert await completed_events(redis, ccid) == []  # the object, and no event yet
        settings = ingest_settings(
            data_dir, own_redis.url, fake.url, ingest_instance_id="ingest-killed",
            **s3_settings(weed, "killed"),
        )  # fmt: skip
        async with running(settings):
            event = await recording_completed(redis, ccid, timeout=30)
            await wait_for(lambda: asyncio.sleep(0, not spooled.exists()), 10, "the spool cleared")
        assert (event["bytes"], event["sha256"]) == await store.digest(ccid)
        assert (event["bytes"], event["sha256"]) == (
            len(left[spooled.name]),
            hashlib.sha256(left[spooled.name]).hexdigest(),
        )
        # as if killed after the event and before the spool was cleared: never announced twice
        for name, content in left.items():
            (spooled.parent / name).write_bytes(content)
        async with running(settings):
            await wait_for(lambda: asyncio.sleep(0, not spooled.exists()), 20, "the spool cleared")
            await asyncio.sleep(0.5)
        assert len(await completed_events(redis, ccid)) == 1
    finally:
        await redis.aclose()
