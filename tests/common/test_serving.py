"""Background work that fails for good stops the process instead of leaving a server that answers
probes with its work dead (uvicorn alone logs the error and serves on)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from voicetap_cli.embedded_redis import free_port
from voicetap_common.serving import WorkFailure, guarded, serve_until


async def test_a_failed_background_task_stops_the_server() -> None:
    failure = WorkFailure()

    async def work() -> None:
        await asyncio.sleep(0.2)
        raise NotADirectoryError(20, "Not a directory", "/data/a-file/db")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with asyncio.TaskGroup() as group:
            group.create_task(guarded(work(), failure))
            yield

    config = uvicorn.Config(
        Starlette(lifespan=lifespan), port=free_port(), log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    await asyncio.wait_for(serve_until(server, asyncio.Event(), failure), 10)
    assert isinstance(failure.error, NotADirectoryError)
    assert failure.message("voicetap indexer") == (
        "voicetap indexer: stopped after a failure: NotADirectoryError: "
        "[Errno 20] Not a directory: '/data/a-file/db'"
    )


async def test_a_stop_without_failure_leaves_none() -> None:
    failure = WorkFailure()
    stop = asyncio.Event()
    config = uvicorn.Config(Starlette(), port=free_port(), log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    asyncio.get_running_loop().call_later(0.3, stop.set)
    await asyncio.wait_for(serve_until(server, stop, failure), 10)
    assert failure.error is None
