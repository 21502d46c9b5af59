"""The ingest's recording route × every kind of credential, over real HTTP; the probes stay open,
``/metrics`` takes its own token, the media WebSocket is not behind the API token."""

import time
import wave
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from tests.media_ingest.harness import ingest_settings, running
from voicetap_common.access import link_key, link_query
from voicetap_common.recordings_store import object_name

TOKENS = ("old-ingest-token", "new-ingest-token")
METRICS_TOKEN = "ingest-metrics-token"
CALL = "v3:rec-acc"


def _link(path: str, *, ttl: int = 600, now: float | None = None) -> dict[str, str]:
    key = link_key(None, TOKENS)
    assert key is not None
    return dict(part.split("=") for part in link_query(key, path, ttl, now).split("&"))


def write_recording(data_dir: Path) -> bytes:
    path = data_dir / "recordings" / object_name(CALL)  # the default file:// store
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(b"\x01\x00\x02\x00" * 800)
    return path.read_bytes()


async def test_the_recording_takes_each_rotated_token_or_its_link_and_nothing_else(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    content = write_recording(tmp_path)
    settings = ingest_settings(
        tmp_path,
        redis_url,
        fake.url,
        voicetap_api_token=",".join(TOKENS),
        voicetap_metrics_token=METRICS_TOKEN,
    )
    path = f"/calls/{CALL}/recording.wav"
    async with running(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        for token in TOKENS:
            answer = await http.get(quote(path), headers={"authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.content == content, token
        opened = await http.get(quote(path), params=_link(path))
        assert opened.status_code == 200 and opened.content == content
        tampered = {**_link(path), "expires": str(int(time.time()) + 86_400)}
        for params, headers, status, reason in [
            ({}, {}, 401, "missing"),
            ({}, {"authorization": "Bearer wrong"}, 401, "wrong_token"),
            ({}, {"authorization": f"Bearer {METRICS_TOKEN}"}, 401, "wrong_token"),
            (tampered, {}, 401, "tampered_link"),
            (_link("/calls/v3:other/recording.wav"), {}, 401, "tampered_link"),
            (_link(path, ttl=60, now=time.time() - 3600), {}, 403, "expired_link"),
        ]:
            answer = await http.get(quote(path), params=params, headers=headers)
            assert answer.status_code == status, (reason, answer.text)
            assert answer.json()["reason"] == reason and b"RIFF" not in answer.content
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 401
        metrics = await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert 'voicetap_http_refused_total{reason="tampered_link",service="ingest"} 2.0' in (
            metrics.text
        )
        # the media WebSocket keeps Telnyx's per-call token: no bearer asked for at the handshake
        ws_url = url.replace("http://", "ws://") + "/streams/telnyx"
        async with connect(ws_url) as socket:
            await socket.send('{"event": "connected", "version": "1.0.0"}')
        assert (await http.get("/healthz")).status_code == 200


@pytest.mark.parametrize("insecure", [False, True])
async def test_without_a_token_on_loopback_the_recording_is_served(
    redis: Redis, redis_url: str, fake, tmp_path: Path, insecure: bool
) -> None:
    content = write_recording(tmp_path)
    settings = ingest_settings(tmp_path, redis_url, fake.url, voicetap_insecure_no_auth=insecure)
    async with running(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(quote(f"/calls/{CALL}/recording.wav"))
        assert answer.status_code == 200 and answer.content == content
