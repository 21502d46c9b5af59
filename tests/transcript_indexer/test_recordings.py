"""The indexer serves any call's recording from the recordings store (a real SeaweedFS, and the
default directory), with Range and ETag, behind its bearer token: one base URL for API users."""

import os
from pathlib import Path

import httpx

from tests.s3_server import SeaweedServer
from tests.transcript_indexer.harness import indexer_settings, running_indexer
from voicetap_common.recordings_store import RecordingsStore, StoreConfig

CALL = "v3:indexer-serves-it"


async def test_the_indexer_serves_recordings_from_s3_with_ranges(
    redis_url: str, tmp_path: Path, s3_config: StoreConfig, s3_server: SeaweedServer
) -> None:
    data = b"RIFF" + os.urandom(200_000)
    source = tmp_path / "spooled.wav"
    source.write_bytes(data)
    stored = await RecordingsStore(s3_config).put(CALL, source)
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
        indexer_api_token="s3cret-token",
        voicetap_recordings_url=s3_config.url,
        aws_endpoint_url_s3=s3_config.endpoint,
        aws_access_key_id=s3_config.access_key_id,
        aws_secret_access_key=s3_config.secret_access_key,
    )  # fmt: skip
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as http:
        path = f"/calls/{CALL}/recording.wav"
        assert (await http.get(path)).status_code == 401
        auth = {"authorization": "Bearer s3cret-token"}
        whole = await http.get(path, headers=auth)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "audio/wav"
        assert int(whole.headers["content-length"]) == stored.bytes
        part = await http.get(path, headers={**auth, "range": "bytes=100000-"})
        assert part.status_code == 206 and part.content == data[100_000:]
        assert part.headers["etag"] == whole.headers["etag"]
        stale = await http.get(path, headers={**auth, "range": "bytes=0-9", "if-range": '"other"'})
        assert stale.status_code == 200 and stale.content == data  # another version: whole
        assert (await http.get("/calls/v3:none/recording.wav", headers=auth)).status_code == 404


async def test_by_default_the_indexer_serves_the_data_directory(
    redis_url: str, tmp_path: Path
) -> None:
    settings = indexer_settings(redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path)
    source = tmp_path / "spooled.wav"
    source.write_bytes(b"RIFF" + bytes(1000))
    await RecordingsStore(settings.store_config(tmp_path)).put(CALL, source)
    assert (tmp_path / "recordings" / f"{CALL}.wav").read_bytes() == source.read_bytes()
    async with running_indexer(settings) as url, httpx.AsyncClient(base_url=url) as http:
        found = await http.get(f"/calls/{CALL}/recording.wav", headers={"range": "bytes=0-3"})
        assert found.status_code == 206 and found.content == b"RIFF"
