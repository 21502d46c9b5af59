"""Takeover: the holder of a live call is killed -9 and does not come back; one of the surviving
instances (two of them race) moves the media to itself within INGEST_TAKEOVER_SECONDS + 2 s,
records the rest, and the one completed event lists both parts, joined into one file."""

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from media_ingest.keys import ALIVE
from telnyx_simulator.audio import CallAudio
from telnyx_simulator.rtp import ForkLeg, RtpFork
from tests.media_ingest.harness import (
    noise,
    publish_webhook,
    recording_completed,
    run_command,
    target_port,
    topic_events,
    wait_for,
)
from tests.media_ingest.test_ingest_rtp import round_trip
from tests.media_ingest.test_ports import free_range
from tests.media_ingest.test_restart_in_place import (
    FRAME,
    completed_events,
    ingest_process,
    instance_env,
    kill,
    received_runs,
)
from voicetap_sdk.topics import MEDIA_TAKEOVER

pytestmark = pytest.mark.slow  # real-time media and real processes

TAKEOVER_SECONDS = 3.0


def fork_to(audio: CallAudio, rx: int, tx: int, start_frame: int = 0) -> RtpFork:
    return RtpFork(
        audio,
        [ForkLeg("inbound", "127.0.0.1", rx), ForkLeg("outbound", "127.0.0.1", tx)],
        start_frame=start_frame,
    )


async def test_a_survivor_takes_a_dead_holders_call_and_the_parts_are_joined(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    ccid = call.call_control_id
    settings = {
        "INGEST_TAKEOVER_SECONDS": str(TAKEOVER_SECONDS),
        "INGEST_PORT_LEASE_SECONDS": "3",  # the dead one's part is repaired once its name expires
    }
    ports = free_range(6)
    envs = [
        {**instance_env(tmp_path, redis_url, fake.url, name, ports[4 * k : 4 * k + 4]), **settings}
        for k, name in enumerate(("ingest-holder", "ingest-b", "ingest-c"))
    ]
    audio = CallAudio(noise(60, 71), noise(60, 72))
    loop = asyncio.get_running_loop()
    async with ingest_process(envs[0]) as holder:
        started = await run_command(redis, "fork_start", ccid)
        assert started["executed_by"] == "media_ingest:ingest-holder"
        first = fork_to(
            audio, target_port(started["allocated"]["rx"]), target_port(started["allocated"]["tx"])
        )
        sending = asyncio.create_task(first.run())
        t0 = loop.time()
        async with ingest_process(envs[1]), ingest_process(envs[2]):
            await asyncio.sleep(2.0)
            await kill(holder)
            killed_at = loop.time()
            # one survivor stops the dead holder's fork and forks to its own ports
            moved = await wait_for(
                lambda: _second(fake.state.requests_for(ccid, "fork_start")),
                TAKEOVER_SECONDS + 2 + 3,  # + the liveness period and a loaded machine's slack
                "the fork moved to a survivor",
            )
            assert loop.time() - killed_at <= TAKEOVER_SECONDS + 2 + 3
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            resumed_frame = round((loop.time() - t0) / 0.02)
            rx, tx = target_port(moved.body["rx"]), target_port(moved.body["tx"])
            second = fork_to(audio, rx, tx, resumed_frame)
            sending = asyncio.create_task(second.run())
            await asyncio.sleep(4.0)
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            sent_frames = resumed_frame + min(second.sent.values())
            await publish_webhook(redis, "call.hangup", ccid)
            event = await recording_completed(redis, ccid, timeout=30)
            await asyncio.sleep(1.0)
            assert len(await completed_events(redis, ccid)) == 1
            [takeover] = [e for e in await topic_events(redis, MEDIA_TAKEOVER)]
            assert await redis.zscore(ALIVE, "ingest-holder") is None  # forgotten once empty
        assert len(fake.state.requests_for(ccid, "fork_start")) == 2  # exactly one takeover
    survivor = takeover["instance"]
    assert survivor in ("ingest-b", "ingest-c") and takeover["dead_instance"] == "ingest-holder"
    assert (takeover["part"], takeover["media"], takeover["call_control_id"]) == (2, "fork", ccid)
    assert event["instance"] == survivor and event["reason"] == "hangup"
    one, two = event["parts"]
    assert (one["part"], one["instance"], one["joined"], one["start"]) == (
        1,
        "ingest-holder",
        True,
        0.0,
    )
    assert (two["part"], two["instance"], two["joined"]) == (2, survivor, True)
    [gap] = event["gaps"]
    assert gap["reason"] == "takeover" and gap["start"] <= two["start"] <= gap["end"]
    from media_ingest.protocol.wav import read_wav

    _, frames = read_wav(Path(event["path"]))
    assert abs(len(frames) / 8000 - event["duration"]) <= 0.001
    for channel, pcm in ((0, audio.inbound), (1, audio.outbound)):
        reference = round_trip(pcm)[: sent_frames * FRAME]
        runs = received_runs(frames[:, channel], reference)
        assert len(runs) == 2, runs  # the holder's part, the survivor's part
        (first_frame, before, at), (later_frame, after, later) = runs
        assert first_frame == 0 and later_frame == resumed_frame, runs
        # at their wall-clock times: each fork's first packet is placed where it arrived, so the
        # two runs are apart by the time between them give or take two arrivals' scheduling
        assert at <= 0.5 * 8000 and abs((later - at) - resumed_frame * FRAME) <= 0.1 * 8000, runs
        assert abs(one["end"] - (at + before * FRAME) / 8000) <= 0.03
        assert not frames[at + (before + 1) * FRAME : later, channel].any()


async def _second(requests: list) -> object:
    return requests[1] if len(requests) > 1 else None
