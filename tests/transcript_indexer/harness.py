"""Running the indexer under test: settings with short bounds, the whole service in the test's loop."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from telnyx_simulator.serve import serve
from transcript_indexer.main import build_app
from transcript_indexer.settings import IndexerSettings
from voicetap_cli.embedded_redis import free_port
from voicetap_common.settings import access_settings


def indexer_settings(
    redis_url: str, database_url: str, data_dir: Path, **overrides: object
) -> IndexerSettings:
    """Settings for an indexer under test: short bounds so that tests wait little."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "voicetap_data_dir": data_dir,
        "indexer_database_url": database_url,
        "indexer_port": free_port(),
        "indexer_block_ms": 100,
        "indexer_settle_seconds": 0.3,
        "indexer_claim_idle_ms": 1000,
        "indexer_claim_interval_seconds": 0.2,
        "indexer_sse_keepalive_seconds": 1.0,
        "log_format": "console",
    }
    values.update(overrides)
    return IndexerSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_indexer(settings: IndexerSettings) -> AsyncIterator[str]:
    """The whole indexer app (consumers, sweeper, API) served in this event loop on
    ``settings.indexer_port``, ready (its database open); yields the API's base URL."""
    tokens = access_settings(settings, settings.indexer_api_token).tokens
    headers = {"authorization": f"Bearer {tokens[0]}"} if tokens else {}
    async with serve(build_app(settings), port=settings.indexer_port) as url:
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("indexer did not become ready")
        yield url


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, message: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{message} not reached within {timeout} s")
        await asyncio.sleep(0.05)
