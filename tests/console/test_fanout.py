"""The console's live feed against a real Redis: one topic reader per process, fanned out to
every browser stream, coalesced, and reading calls that started before the console did."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from tests.console.events import analytics, sse, webhook
from voicetap_cli.embedded_redis import free_port
from voicetap_console.app import create_app
from voicetap_console.upstream import Upstreams
from voicetap_sdk.streams import Producer

Console = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def console(redis_url: str, redis: Redis) -> Console:
    """Starts the console (in this process, on a free port) over the test Redis."""

    @asynccontextmanager
    async def start(partitions: int = 1) -> AsyncIterator[str]:
        nowhere = f"http://127.0.0.1:{free_port()}"  # no indexer or ingest: not read here
        app = create_app(
            redis=Redis.from_url(redis_url, socket_timeout=5),
            upstreams=Upstreams(nowhere, None, nowhere),
            service_urls={},
            partitions=partitions,
            recent_calls=50,
            history_seconds=3600,
            redis_timeout_s=1.0,
        )
        async with serve(app) as url:
            yield url

    return start


async def next_event(events: AsyncIterator[tuple[str, Any]], kind: str) -> Any:
    async for found, data in events:
        if found == kind:
            return data
    raise AssertionError(f"the stream ended before a {kind} event")


@pytest.mark.parametrize("partitions", [1, 3])
async def test_calls_running_before_the_console_started_are_in_the_snapshot(
    console: Console, redis: Redis, partitions: int
) -> None:
    producer = Producer(redis, 10_000, partitions)
    for n in range(6):
        await webhook(producer, "call.initiated", f"early-{n}", **{"from": f"+1555000{n}"})
        await webhook(producer, "call.answered", f"early-{n}")
    await webhook(producer, "call.hangup", "early-0")
    async with (
        console(partitions) as url,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{url}/events/calls") as response,
    ):
        snapshot = await next_event(sse(response), "snapshot")
    assert sorted(c["call_control_id"] for c in snapshot["active"]) == [
        f"early-{n}" for n in range(1, 6)
    ]
    assert [c["call_control_id"] for c in snapshot["recent"]] == ["early-0"]


async def test_many_tabs_share_one_reader_and_see_each_change(
    console: Console, redis: Redis
) -> None:
    producer = Producer(redis, 10_000)
    async with console() as url, httpx.AsyncClient(timeout=10) as client:
        await asyncio.sleep(0.5)  # the reader is following
        before = len(await redis.client_list())
        async with open_streams(client, f"{url}/events/calls", 20) as tabs:
            after = len(await redis.client_list())
            streams = [sse(r) for r in tabs]
            for events in streams:
                await next_event(events, "snapshot")
            await webhook(producer, "call.initiated", "c-1", **{"from": "+15550001"})
            await webhook(producer, "call.answered", "c-1")
            await analytics(producer, "c-1", 1, -18.0)
            for events in streams:
                seen: dict[str, Any] = {}
                while not (seen.get("levels") and seen.get("state") == "active"):
                    batch = await asyncio.wait_for(next_event(events, "calls"), 5)
                    seen = next(c for c in batch if c["call_control_id"] == "c-1")
                assert seen["levels"]["inbound"]["rms_dbfs"] == -18.0
    assert after == before, "a browser stream opened a Redis connection"


async def test_two_hundred_calls_reach_a_tab_in_a_few_coalesced_events(
    console: Console, redis: Redis
) -> None:
    producer = Producer(redis, 100_000)
    calls = [f"load-{n}" for n in range(200)]
    async with (
        console() as url,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{url}/events/calls") as response,
    ):
        events = sse(response)
        await next_event(events, "snapshot")
        started = time.monotonic()
        for ccid in calls:
            await webhook(producer, "call.answered", ccid)
        for ccid in calls:
            await analytics(producer, ccid, 1, -25.0)
        leveled: set[str] = set()
        batches = 0
        while len(leveled) < len(calls):
            batch = await asyncio.wait_for(next_event(events, "calls"), 5)
            batches += 1
            leveled |= {c["call_control_id"] for c in batch if c["levels"]}
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"200 calls took {elapsed:.1f} s to reach the browser"
    # 400 entries, coalesced at 4 flushes a second: a handful of events, not hundreds.
    assert batches <= 4 * elapsed + 3, f"{batches} events in {elapsed:.1f} s"


@asynccontextmanager
async def open_streams(
    client: httpx.AsyncClient, url: str, count: int
) -> AsyncIterator[list[httpx.Response]]:
    responses: list[httpx.Response] = []
    try:
        for _ in range(count):
            responses.append(await client.send(client.build_request("GET", url), stream=True))
        yield responses
    finally:
        for response in responses:
            await response.aclose()


FRAME_GAPS = """() => {
  window.maxGap = 0;
  let last = performance.now();
  const tick = (now) => { window.maxGap = Math.max(window.maxGap, now - last); last = now; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""


@pytest.mark.slow
async def test_two_hundred_live_calls_keep_the_list_page_responsive(
    browser: Browser, console: Console, redis: Redis
) -> None:
    producer = Producer(redis, 100_000)
    calls = [f"busy-{n}" for n in range(200)]
    async with console() as url:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        try:
            await page.goto(url + "/")
            for ccid in calls:
                await webhook(producer, "call.answered", ccid, **{"from": "+15550000"})
            await page.wait_for_function(
                "document.querySelectorAll('#active-calls tr[data-call]').length === 200",
                timeout=10_000,
            )
            await page.evaluate(FRAME_GAPS)
            for second in range(1, 4):
                for n, ccid in enumerate(calls):
                    await analytics(producer, ccid, second, -55.0 + (n + 7 * second) % 40)
                await asyncio.sleep(1)
            await page.wait_for_function(
                "[...document.querySelectorAll('#active-calls .lvl-in')].every((m) => m.value > -60)",
                timeout=5_000,
            )
            gap = await page.evaluate("window.maxGap")
        finally:
            await context.close()
    assert gap < 250, f"the page froze for {gap:.0f} ms while 200 calls updated"
