"""The console in a real Chromium against the real stack playing simulated calls (slow)."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page
from redis.asyncio import Redis

from tests.console.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SEEK_TOLERANCE_S = 0.3

# Notes, in the page, the moment each call's row first shows it answered (not ringing).
WATCH_ROWS = """() => {
  window.activeSeen = {};
  const look = () => {
    for (const row of document.querySelectorAll('#active-calls tr[data-call]')) {
      const talking = row.querySelector('.talking').textContent;
      if (talking && talking !== 'ringing' && !(row.dataset.call in window.activeSeen)) {
        window.activeSeen[row.dataset.call] = Date.now();
      }
    }
    requestAnimationFrame(look);
  };
  look();
}"""

# Notes where the player is when it next has seeked.
ON_SEEKED = """(id) => {
  const player = document.getElementById(id);
  window.seekedAt = null;
  player.addEventListener('seeked', () => { window.seekedAt = player.currentTime; }, { once: true });
}"""


async def seeked_after(page: Page, player: str, action: Callable[[], Awaitable[None]]) -> float:
    """Where ``player`` is once it has seeked, after ``action`` (a click, a key)."""
    await page.evaluate(ON_SEEKED, player)
    await action()
    await page.wait_for_function("window.seekedAt !== null", timeout=10_000)
    return float(await page.evaluate("window.seekedAt"))


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    found = await context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield found
    finally:
        await context.close()
    assert not errors, f"script errors in the page: {errors}"


async def wait_for(check: str, page: Page, timeout_s: float, what: str) -> None:
    try:
        await page.wait_for_function(check, timeout=timeout_s * 1000)
    except Exception as exc:
        raise AssertionError(f"{what} not seen within {timeout_s} s") from exc


async def answered_ms(redis_url: str, ccid: str) -> int:
    """When the gateway stored the call's ``call.answered`` (its entry id's milliseconds)."""
    redis = Redis.from_url(redis_url)
    try:
        for entry_id, fields in await redis.xrange("telnyx.call.answered"):
            if ccid.encode() in fields[b"event"]:
                return int(entry_id.split(b"-")[0])
    finally:
        await redis.aclose()
    raise AssertionError(f"no call.answered for {ccid}")


async def test_a_live_call_from_the_list_to_its_recording(
    browser: Browser, page: Page, stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    await page.goto(stack.console + "/")
    await page.evaluate(WATCH_ROWS)
    await wait_for(
        "document.getElementById('feed-status').textContent.startsWith('Live')",
        page,
        10,
        "the live feed",
    )
    simulation = stack.simulate(
        "--calls", "1", "--ring", "1", "--settle", "5", log=tmp_path / "simulate.log"
    )
    try:
        # On the list within 2 s of its answer, its meters moving.
        await wait_for(
            "Object.keys(window.activeSeen).length > 0", page, 30, "an answered call on /"
        )
        ccid, seen_ms = next(iter((await page.evaluate("window.activeSeen")).items()))
        delay_ms = seen_ms - await answered_ms(stack.redis_url, ccid)
        assert delay_ms <= 2000, f"the call appeared {delay_ms} ms after its answer"
        row = page.locator(f'#active-calls tr[data-call="{ccid}"]')
        levels = set()
        for _ in range(12):
            levels.add(
                await row.evaluate(
                    "r => [r.querySelector('.lvl-in').value, r.querySelector('.lvl-out').value].join()"
                )
            )
            if len(levels) >= 3:
                break
            await asyncio.sleep(0.5)
        assert len(levels) >= 3, f"the level meters did not move: {levels}"
        await page.screenshot(path=screenshots / "live-calls.png", full_page=True)

        # Its page while live: the transcript grows as lines are said.
        call_page = await page.context.new_page()
        await call_page.goto(f"{stack.console}/calls/{ccid}")
        await wait_for(
            "document.querySelectorAll('#transcript li.final').length >= 2",
            call_page,
            15,
            "live transcript lines",
        )
        assert await call_page.locator("#f-state").text_content() == "active", (
            "the lines came after the call"
        )
        assert await call_page.locator("#live").is_visible()
        await call_page.screenshot(path=screenshots / "call-live.png", full_page=True)

        # After the hang-up: the recording plays, a click on a line seeks to its start.
        await wait_for(
            "!document.getElementById('recording').hidden", call_page, 30, "the recording"
        )
        await wait_for(
            "document.getElementById('player').readyState >= 1 && document.querySelectorAll('#transcript li.final').length >= 4",
            call_page,
            15,
            "a playable recording and the whole transcript",
        )
        line = "#transcript li.final:nth-child(3) button"
        start = float(await call_page.locator(line).get_attribute("data-start") or "nan")
        at = await seeked_after(call_page, "player", call_page.locator(line).click)
        assert abs(at - start) <= SEEK_TOLERANCE_S, f"seeked to {at}, the line starts at {start}"
        await call_page.wait_for_function(
            f"document.getElementById('player').currentTime > {at + 0.3}", timeout=5000
        )
        assert await call_page.locator(line).get_attribute("aria-current") == "true", (
            "the line heard is not highlighted"
        )
        # The same from the keyboard: a line is a button, Enter plays from it.
        first = "#transcript li.final:nth-child(1) button"
        await call_page.locator(first).focus()
        at = await seeked_after(call_page, "player", lambda: call_page.keyboard.press("Enter"))
        start = float(await call_page.locator(first).get_attribute("data-start") or "nan")
        assert abs(at - start) <= SEEK_TOLERANCE_S, f"Enter seeked to {at}, the line is at {start}"
        await call_page.evaluate("document.getElementById('player').pause()")
        await call_page.screenshot(path=screenshots / "call-recording.png", full_page=True)
        # The call moved to the recent list.
        await wait_for(
            f"document.querySelector('#recent-calls tr[data-call=\"{ccid}\"]') !== null",
            page,
            10,
            "the call among the recent ones",
        )
    finally:
        await asyncio.to_thread(simulation.wait, 60)


async def test_a_search_hit_plays_from_its_moment_and_ops_shows_the_groups(
    browser: Browser, page: Page, stack: Stack, screenshots: Path, tmp_path: Path
) -> None:
    simulation = stack.simulate(
        "--calls", "1", "--ring", "0.5", "--settle", "5", log=tmp_path / "simulate.log"
    )
    await asyncio.to_thread(simulation.wait, 90)  # its own checks are not tested here
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 20
        while not (await client.get(stack.console + "/api/search", params={"q": "order"})).json()[
            "items"
        ]:
            assert time.monotonic() < deadline, "the indexer never found the call"
            await asyncio.sleep(0.5)
    await page.goto(stack.console + "/search?q=order")
    hit = page.locator(".play-hit").first
    start = float(await hit.get_attribute("data-start") or "nan")
    at = await seeked_after(page, "hit-player", hit.click)
    assert abs(at - start) <= SEEK_TOLERANCE_S, (
        f"the hit played from {at}, its line starts at {start}"
    )
    assert await page.locator(".hit mark").count() >= 1
    await page.evaluate("document.getElementById('hit-player').pause()")
    await page.screenshot(path=screenshots / "search.png", full_page=True)

    await page.goto(stack.console + "/ops")
    topics = page.locator("#topics")
    answered = topics.locator("tr", has_text="telnyx.call.answered")
    assert await answered.count() >= 1
    assert {"media_ingest", "transcript_indexer"} <= set(
        await topics.locator("td.group").all_text_contents()
    )
    assert await page.locator("#services td.ok").count() == 4, await page.locator(
        "#services"
    ).inner_text()
    assert await page.locator("#instances tbody tr").count() >= 2
    await page.screenshot(path=screenshots / "ops.png", full_page=True)


async def test_recordings_answer_range_requests(stack: Stack, tmp_path: Path) -> None:
    simulation = stack.simulate(
        "--calls", "1", "--ring", "0.5", "--settle", "5", "--json", log=tmp_path / "simulate.log"
    )
    await asyncio.to_thread(simulation.wait, 90)  # its own checks are not tested here
    async with httpx.AsyncClient(timeout=10) as client:
        calls = (await client.get(stack.console + "/api/calls", params={"limit": 1})).json()[
            "items"
        ]
        url = f"{stack.console}/recordings/{calls[0]['call_control_id']}.wav"
        whole = await client.get(url)
        part = await client.get(url, headers={"range": "bytes=44-1043"})
        tail = await client.get(url, headers={"range": "bytes=-100"})
        beyond = await client.get(url, headers={"range": f"bytes={len(whole.content)}-"})
    assert whole.status_code == 200 and whole.content[:4] == b"RIFF"
    assert whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 44-1043/{len(whole.content)}"
    assert part.content == whole.content[44:1044]
    assert tail.status_code == 206 and tail.content == whole.content[-100:]
    assert beyond.status_code == 416
