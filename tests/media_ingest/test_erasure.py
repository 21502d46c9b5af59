"""Erasure of recordings: a real media_ingest instance (real UDP, the fake Telnyx API) beside a real
indexer, which executes the request and names the calls; the instance deletes a finished call's
recording, and stops a call erased while it is live (partial file deleted, no completed event, its
media events gone and no new ones)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from media_ingest.recording.files import spool_path
from telnyx_simulator.audio import CallAudio
from telnyx_simulator.rtp import ForkLeg, RtpFork
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
from tests.transcript_indexer.harness import indexer_settings, running_indexer
from tests.transcript_indexer.test_erasure import mentions
from voicetap_sdk.topics import MEDIA_ANALYTICS, RECORDING_COMPLETED

pytestmark = pytest.mark.slow  # real-time media

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


async def analytics_of(redis: Redis, call_id: str) -> int:
    return sum(
        1 for e in await topic_events(redis, MEDIA_ANALYTICS) if e["call_control_id"] == call_id
    )


async def test_a_finished_and_a_live_call_lose_their_recordings(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    finished = fake.state.create_call().call_control_id
    live = fake.state.create_call().call_control_id
    indexer = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path / "indexer"
    )
    settings = ingest_settings(tmp_path / "ingest", redis_url, fake.url)
    async with (
        running_indexer(indexer) as indexer_url,
        running(settings) as (service, _),
        httpx.AsyncClient(base_url=indexer_url, timeout=30) as api,
    ):
        part = f"media_ingest.erasure:{service.instance}"
        assert (await run_command(redis, "fork_start", finished))["ok"]
        await asyncio.sleep(0.5)
        await publish_webhook(redis, "call.hangup", finished)
        completed = await recording_completed(redis, finished)
        assert Path(completed["path"]).exists()

        response = await api.delete(f"/calls/{finished}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert part in body["answered"]
        assert body["removed"]["recordings"] == 1 and body["removed"]["live_recordings"] == 0
        assert not Path(completed["path"]).exists()
        assert await mentions(redis, finished) == {}

        result = await run_command(redis, "fork_start", live)
        rx, tx = target_port(result["allocated"]["rx"]), target_port(result["allocated"]["tx"])
        fork = RtpFork(
            CallAudio(noise(8, 1), noise(8, 2)),
            [ForkLeg("inbound", "127.0.0.1", rx), ForkLeg("outbound", "127.0.0.1", tx)],
            "PCMU",
        )
        sending = asyncio.create_task(fork.run())
        try:
            await wait_for(lambda: analytics_of(redis, live), what="the live call's analytics")
            wav = spool_path(settings.voicetap_data_dir, live)
            assert wav.exists()
            erase = await asyncio.create_subprocess_exec(
                VOICETAP,
                "erase",
                "--call",
                live,
                "--timeout",
                "20",
                env={**os.environ, "REDIS_URL": redis_url, "LOG_FORMAT": "console"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await erase.communicate()
            assert erase.returncode == 0, err.decode()
            counts = dict(line.split()[:2] for line in out.decode().splitlines()[1:])
            assert counts["live_recordings"] == "1" and counts["recordings"] == "1"
            assert live not in service.calls and not wav.exists()
            await asyncio.sleep(1.0)  # media still arrives at the released ports
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        # a late call.answered (Telnyx does not order webhooks) must not start recording again
        await publish_webhook(redis, "call.answered", live, state="answered", handled=True)
        await asyncio.sleep(0.3)
        assert len(fake.state.requests_for(live, "fork_start")) == 1
        assert live not in service.calls
        await publish_webhook(redis, "call.hangup", live, handled=True)
        await asyncio.sleep(0.5)
        assert service.allocator.in_use == 0
        assert not wav.exists()
        # only the late webhooks written straight to their topics here (the gateway would have
        # refused them): read and ignored; no media event of the call is left, none came after the erasure
        assert await mentions(redis, live) == {"telnyx.call.hangup": 1, "telnyx.call.answered": 1}
        assert not [
            e
            for e in await topic_events(redis, RECORDING_COMPLETED)
            if e["call_control_id"] == live
        ]


async def test_an_instance_that_was_down_deletes_what_was_erased_meanwhile(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    """A finished recording and an orphan (its writer died: sidecar still there) of calls erased
    while no instance ran are deleted at start; the orphan is not repaired nor announced."""
    from voicetap_common.erasure import set_tombstones

    settings = ingest_settings(tmp_path, redis_url, fake.url)
    finished = spool_path(tmp_path, "v3:erased-finished")
    orphan = spool_path(tmp_path, "v3:erased-orphan")
    kept = spool_path(tmp_path, "v3:kept")
    finished.parent.mkdir(parents=True)
    for wav in (finished, orphan, kept):
        wav.write_bytes(b"RIFF")
    orphan.with_suffix(".json").write_text(
        '{"call_control_id": "v3:erased-orphan", "instance": "dead-one"}'
    )
    await set_tombstones(redis, ["v3:erased-finished", "v3:erased-orphan"], 60)
    async with running(settings):
        assert not finished.exists() and not orphan.exists()
        assert not orphan.with_suffix(".json").exists()
        assert kept.exists()
    assert await topic_events(redis, RECORDING_COMPLETED) == []
