"""Where finished recordings live: ``VOICETAP_RECORDINGS_URL``, a directory (``file://``) or any
S3-compatible bucket (``s3://bucket/prefix``), behind one small interface.

Both kinds are `obstore <https://developmentseed.org/obstore/>`_ stores (``LocalStore``,
``S3Store``): the library signs, retries, splits large uploads into multipart ones and reads byte
ranges; this module names the objects, verifies an upload (size and SHA-256 read back) and maps
the library's errors onto two: absent (``None``) or :class:`StoreError`.

An object's name is the call's :func:`object_name` (``<escaped call_control_id>.wav``) under the
URL's prefix, so any instance (and the indexer) finds any call's recording without asking which
instance recorded it.
"""

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import LocalStore, S3Store

from voicetap_common.http_range import ByteRange

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

_SAFE = re.compile(r"[^A-Za-z0-9_.:=-]")
_READ_CHUNK = 1 << 20
_HASH_CHUNK = 1 << 20
# A request never hangs a route or an upload for minutes (the library's default is 3 min of retries).
_RETRIES: "RetryConfig" = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
_CONNECT_TIMEOUT = timedelta(seconds=3)
_REQUEST_TIMEOUT = timedelta(seconds=300)


class StoreError(Exception):
    """The store did not answer as it should (down, refused, or an upload that does not verify)."""


@dataclass(frozen=True)
class StoreConfig:
    """``url``: ``file:///abs/dir`` or ``s3://bucket[/prefix]``; the rest only for ``s3://`` (None:
    the AWS SDK's way, e.g. ``AWS_SESSION_TOKEN``, web identity or the instance's role)."""

    url: str
    endpoint: str | None = None  # AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
    region: str | None = None  # AWS_REGION
    access_key_id: str | None = None  # AWS_ACCESS_KEY_ID
    secret_access_key: str | None = None  # AWS_SECRET_ACCESS_KEY


@dataclass(frozen=True)
class StoredRecording:
    """What the completed event says of the object: where, how big, its SHA-256 (hex)."""

    storage_url: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str  # quoted, as HTTP sends it


def object_name(call_control_id: str) -> str:
    """A call's object (and spool file) name: Telnyx ids are URL-safe, anything else is escaped
    (never a path, never hidden)."""
    stem = _SAFE.sub(lambda m: f"%{ord(m.group()):02X}", call_control_id)
    stem = stem if not stem.startswith(".") else "%2E" + stem[1:]
    return f"{stem}.wav"


def check_url(url: str) -> str:
    """``url`` if it names a store this module opens, else ValueError saying what it must be."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return url
    if parts.scheme == "s3" and parts.netloc and not parts.query:
        return url
    raise ValueError("must be file:///absolute/directory or s3://bucket[/prefix]")


class RecordingsStore:
    def __init__(self, config: StoreConfig) -> None:
        """Builds the client: no request is made until one is needed, but a ``file://`` directory
        is created here (:class:`StoreError` when it cannot be)."""
        parts = urlsplit(check_url(config.url))
        self.url = config.url.rstrip("/")
        self._store: LocalStore | S3Store
        if parts.scheme == "file":
            try:
                self._store = LocalStore(Path(parts.path), mkdir=True)
            except (ObstoreError, OSError) as exc:
                raise StoreError(f"{parts.path}: {_one_line(exc)}") from exc
            self._directory: Path | None = Path(parts.path)
        else:
            self._directory = None
            s3: S3Config = {}
            if config.endpoint:
                s3["endpoint"] = config.endpoint
            if config.region:
                s3["region"] = config.region
            if config.access_key_id and config.secret_access_key:
                s3["access_key_id"] = config.access_key_id
                s3["secret_access_key"] = config.secret_access_key
            client: ClientConfig = {
                "connect_timeout": _CONNECT_TIMEOUT,
                "timeout": _REQUEST_TIMEOUT,
                "allow_http": (config.endpoint or "").startswith("http://"),
            }
            self._store = S3Store(
                parts.netloc,
                prefix=parts.path.strip("/") or None,
                config=s3,
                client_options=client,
                retry_config=_RETRIES,
            )

    def storage_url(self, call_control_id: str) -> str:
        return f"{self.url}/{object_name(call_control_id)}"

    def local_path(self, call_control_id: str) -> Path | None:
        """The object's file for a ``file://`` store (None for a bucket)."""
        if self._directory is None:
            return None
        return self._directory / object_name(call_control_id)

    async def put(self, call_control_id: str, source: Path) -> StoredRecording:
        """Upload ``source`` (multipart when large: the library's choice) and verify it: the
        object's size and SHA-256, read back, must be the file's. Raises :class:`StoreError`."""
        size, digest = await asyncio.to_thread(_file_digest, source)
        name = object_name(call_control_id)
        try:
            await obstore.put_async(self._store, name, source)
        except (ObstoreError, OSError) as exc:
            raise StoreError(_one_line(exc)) from exc
        stored = await self.digest(call_control_id)
        if stored != (size, digest):
            raise StoreError(
                f"the stored object does not match the file: {stored} != {(size, digest)}"
            )
        return StoredRecording(self.storage_url(call_control_id), size, digest)

    async def digest(self, call_control_id: str) -> tuple[int, str] | None:
        """The object's size and SHA-256 (hex), read whole; None when there is none."""
        sha = hashlib.sha256()
        size = 0
        try:
            result = await obstore.get_async(self._store, object_name(call_control_id))
            async for chunk in result.stream(min_chunk_size=_HASH_CHUNK):
                size += len(chunk)
                await asyncio.to_thread(sha.update, chunk)  # never blocks the media loop
        except FileNotFoundError:
            return None
        except (ObstoreError, OSError) as exc:
            raise StoreError(_one_line(exc)) from exc
        return size, sha.hexdigest()

    async def head(self, call_control_id: str) -> ObjectInfo | None:
        try:
            meta = await obstore.head_async(self._store, object_name(call_control_id))
        except FileNotFoundError:
            return None
        except (ObstoreError, OSError) as exc:
            raise StoreError(_one_line(exc)) from exc
        return ObjectInfo(meta["size"], _quoted(meta["e_tag"] or ""))

    async def read(
        self, call_control_id: str, byte_range: ByteRange | None, etag: str
    ) -> AsyncIterator[bytes]:
        """The object's bytes (``byte_range`` of them), provided it is still the version ``etag``
        names (a rewrite in between ends the stream early rather than mixing two versions)."""
        options: obstore.GetOptions = {"if_match": etag}
        if byte_range is not None:
            options["range"] = (byte_range.start, byte_range.end)
        try:
            result = await obstore.get_async(
                self._store, object_name(call_control_id), options=options
            )
            async for chunk in result.stream(min_chunk_size=_READ_CHUNK):
                yield bytes(chunk)
        except (ObstoreError, OSError) as exc:
            raise StoreError(_one_line(exc)) from exc

    async def delete(self, call_control_id: str) -> None:
        """Remove the call's object (nothing to do when there is none)."""
        try:
            await obstore.delete_async(self._store, object_name(call_control_id))
        except FileNotFoundError:
            return
        except (ObstoreError, OSError) as exc:
            raise StoreError(_one_line(exc)) from exc


def _file_digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            size += len(chunk)
            sha.update(chunk)
    return size, sha.hexdigest()


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') or etag.startswith('W/"') else f'"{etag}"'


def _one_line(error: BaseException) -> str:
    """The library's messages carry a multi-line debug dump: its first line says what failed."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
