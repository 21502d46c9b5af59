"""The recordings store against a real directory and a real S3 server (SeaweedFS): upload and
verify, ranged reads, ETags, delete; and the Range header parser."""

import hashlib
import os
from pathlib import Path

import pytest

from voicetap_common.http_range import ByteRange, Unsatisfiable, parse_range
from voicetap_common.recordings_settings import RecordingsStoreSettings
from voicetap_common.recordings_store import (
    RecordingsStore,
    StoreConfig,
    StoreError,
    object_name,
)

CALL = "v3:abc-DEF_123"


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-", 100, ByteRange(0, 100)),
        ("bytes=10-19", 100, ByteRange(10, 20)),
        ("bytes=90-500", 100, ByteRange(90, 100)),
        ("bytes=-10", 100, ByteRange(90, 100)),
        ("bytes=-500", 100, ByteRange(0, 100)),
        ("bytes=0-0", 1, ByteRange(0, 1)),
        ("items=0-1", 100, None),  # another unit: ignored
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole object
        ("bytes=5-2", 100, None),  # invalid: ignored
        ("bytes=x-2", 100, None),
        ("bytes=", 100, None),
    ],
)
def test_range_header(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-5", 0)]
)
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_object_names_are_never_paths() -> None:
    assert object_name("v3:abc-DEF_1") == "v3:abc-DEF_1.wav"
    assert object_name("../x/y") == "%2E.%2Fx%2Fy.wav"


def test_settings_default_to_the_data_directory_and_refuse_other_urls(tmp_path: Path) -> None:
    config = RecordingsStoreSettings().store_config(tmp_path)
    assert config.url == f"file://{tmp_path.resolve()}/recordings"
    for bad in ("s3:/bucket", "http://x/y", "file://relative/dir", "bucket/prefix"):
        with pytest.raises(ValueError, match="file:///absolute/directory or s3://bucket"):
            RecordingsStoreSettings(voicetap_recordings_url=bad)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordingsStore:
    if request.param == "file":
        return RecordingsStore(StoreConfig(url=f"file://{tmp_path}/store"))
    config: StoreConfig = request.getfixturevalue("s3_config")
    return RecordingsStore(config)


async def test_upload_is_verified_and_served_in_ranges(
    store: RecordingsStore, tmp_path: Path
) -> None:
    source = tmp_path / "spooled.wav"
    data = os.urandom(6 * 1024 * 1024 + 123)  # beyond one multipart chunk
    source.write_bytes(data)
    assert await store.head(CALL) is None
    stored = await store.put(CALL, source)
    assert stored.bytes == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.storage_url == f"{store.url}/{object_name(CALL)}"
    info = await store.head(CALL)
    assert info is not None and info.size == len(data) and info.etag.startswith('"')
    whole = b"".join([chunk async for chunk in store.read(CALL, None, info.etag)])
    assert whole == data
    part = ByteRange(1_000_000, 1_000_100)
    assert (
        b"".join([c async for c in store.read(CALL, part, info.etag)]) == data[1_000_000:1_000_100]
    )
    with pytest.raises(StoreError):  # another version than the one asked for
        [c async for c in store.read(CALL, part, '"not-this-one"')]
    await store.delete(CALL)
    assert await store.head(CALL) is None
    await store.delete(CALL)  # nothing left: still fine


async def test_a_store_that_is_down_is_one_clear_error(tmp_path: Path) -> None:
    from voicetap_cli.embedded_redis import free_port

    source = tmp_path / "spooled.wav"
    source.write_bytes(b"RIFF")
    store = RecordingsStore(
        StoreConfig(
            url="s3://recordings/x",
            endpoint=f"http://127.0.0.1:{free_port()}",
            access_key_id="k",
            secret_access_key="s",
        )
    )
    with pytest.raises(StoreError) as failure:
        await store.put(CALL, source)
    assert "\n" not in str(failure.value)
