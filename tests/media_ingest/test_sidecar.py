"""The sidecar beside a recording: what it keeps while the call goes on, and what a recovery of a
dead instance's WAV announces from it (the process kill itself is in ``test_instance``)."""

import json
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from media_ingest.calls.outputs import MediaOutputs
from media_ingest.calls.registry import SIDECAR_SECONDS, CallRegistry
from media_ingest.events import ErrorReporter, EventPublisher
from media_ingest.metrics import IngestMetrics
from media_ingest.protocol.payload_table import PayloadTable
from media_ingest.protocol.rtp import build_rtp, parse_rtp
from media_ingest.protocol.wav import WavWriter, repair_wav
from media_ingest.recording.recovered import recovered_recording
from media_ingest.recording.sidecar import find_orphans
from telnyx_simulator.g711 import ulaw_encode
from tests.media_ingest.harness import noise
from voicetap_sdk.streams import Producer


def registry(redis: Redis, data_dir: Path) -> CallRegistry:
    publisher = EventPublisher(
        redis,
        Producer(redis, 1000),
        IngestMetrics(CollectorRegistry()),
        queue_size=1000,
        maxlens={},
        default_maxlen=1000,
    )
    return CallRegistry(
        data_dir,
        instance="ingest-a",
        outputs=MediaOutputs(publisher, sample_rate=8000, publish_audio=False),
        errors=ErrorReporter(publisher, "ingest-a"),
        payload_types=PayloadTable(),
        sample_rate=8000,
        jitter_ms=60,
        interval=0.5,
    )


def sidecar(data_dir: Path, call_control_id: str) -> dict:
    return json.loads((data_dir / "spool" / f"{call_control_id}.json").read_bytes())


async def test_a_call_stopped_when_its_instance_died_is_recovered_paused_to_the_end(
    redis: Redis, tmp_path: Path
) -> None:
    calls = registry(redis, tmp_path)
    call = calls.open("v3:stopped")
    call.media.append("fork")
    pcm = noise(1, 51)
    for k in range(50):
        datagram = build_rtp(
            ulaw_encode(pcm[k * 160 : (k + 1) * 160]),
            payload_type=0,
            sequence=k,
            timestamp=160 * k,
            ssrc=5,
        )
        call.recording.inbound.push(parse_rtp(datagram), call.origin + 0.1 + 0.02 * k)
    calls.tick_due(call.origin + 1.2)
    saved = sidecar(tmp_path, "v3:stopped")
    assert (saved["codec"], saved["media"], saved["paused"]) == ("PCMU", ["fork"], [])
    assert saved["legs"]["inbound"]["received"] == 50 and saved["legs"]["outbound"]["received"] == 0
    call.pause(call.origin + 1.2)  # the fork stopped, then the process died
    calls.tick_due(call.origin + 3.0)
    assert sidecar(tmp_path, "v3:stopped")["paused"] == [[1.2, None]]

    [orphan] = find_orphans(tmp_path)
    event = recovered_recording(
        orphan, instance="ingest-b", frames=repair_wav(orphan.wav), sample_rate=8000
    )
    # written up to 0.5 s (the holdback) behind the last tick; the open pause lasts to the end
    assert event.duration == 2.5 and event.paused == [[1.2, 2.5]]
    assert (
        event.codec == "PCMU"
        and event.media == ["fork"]
        and event.recovered
        and event.instance == "ingest-b"
    )
    assert (
        event.legs is not None
        and event.legs["inbound"].received == 50
        and event.legs["inbound"].lost == 0
    )


async def test_the_sidecar_is_whole_when_it_shrinks_and_when_it_outgrows_a_page(
    redis: Redis, tmp_path: Path
) -> None:
    calls = registry(redis, tmp_path)
    call = calls.open("v3:long")
    path = tmp_path / "spool" / "v3:long.json"
    stats = call.recording.inbound.stats
    stats.jitter, stats.clock_rate = 123456.789, 8000
    calls.tick_due(call.origin + SIDECAR_SECONDS)  # the periodic save
    assert sidecar(tmp_path, "v3:long")["legs"]["inbound"]["jitter"] == 123456.789
    stats.jitter = 1.5  # shorter JSON than the file holds: padded, no tail of the last one left
    calls.tick_due(call.origin + 2 * SIDECAR_SECONDS)
    assert (
        sidecar(tmp_path, "v3:long")["legs"]["inbound"]["jitter"] == 1.5
        and path.stat().st_size == call.sidecar.size
    )
    for k in range(300):  # a PCI pause per card digit, many times over: beyond one page
        call.recording.pause(call.origin + 11 + 0.02 * k)
        call.recording.resume(call.origin + 11.01 + 0.02 * k)
    calls.tick_due(call.origin + 20)
    assert path.stat().st_size > 4096 and len(sidecar(tmp_path, "v3:long")["paused"]) == 300
    assert not path.with_suffix(".json.tmp").exists()


async def test_a_sidecar_without_readable_facts_is_still_recovered(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    for name, meta in (
        (
            "v3:old",
            {"call_control_id": "v3:old", "instance": "gone", "started_at": 1.0},
        ),  # written before facts were saved
        (
            "v3:odd",
            {
                "call_control_id": "v3:odd",
                "instance": "gone",
                "codec": "PCMU",
                "legs": {"inbound": {"received": "many"}},
            },
        ),
    ):
        (directory / f"{name}.json").write_text(json.dumps(meta))
        WavWriter(directory / f"{name}.wav", 8000).write(np.zeros((8000, 2), np.int16))
    for orphan in sorted(find_orphans(tmp_path), key=lambda o: o.call_control_id):
        event = recovered_recording(
            orphan, instance="ingest-b", frames=repair_wav(orphan.wav), sample_rate=8000
        )
        assert (event.duration, event.codec, event.legs, event.paused, event.media) == (
            1.0,
            None,
            None,
            [],
            [],
        )
