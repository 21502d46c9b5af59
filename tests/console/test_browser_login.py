"""A real Chromium logs in to the console of a whole stack run with ``VOICETAP_API_TOKEN`` (slow):
the form, the live feed over the session cookie, and the recordings and API the console fetches
from the guarded ingest and indexer with the stack's bearer."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.console.stack import Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "browser-login-token"
FETCH = "async (url) => { const r = await fetch(url); return [r.status, await r.text()]; }"


@pytest.fixture(scope="module")
def guarded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    found = start_stack(tmp_path_factory.mktemp("guarded"), {"VOICETAP_API_TOKEN": TOKEN})
    try:
        yield found
    finally:
        found.stop()


async def test_a_browser_logs_in_and_then_reads_calls_and_recordings(
    browser: Browser, guarded_stack: Stack, tmp_path: Path
) -> None:
    stack = guarded_stack
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(stack.console + "/ops")
        assert page.url == stack.console + "/login?next=%2Fops"
        await page.get_by_label("Access token").fill("not-the-token")
        await page.get_by_role("button", name="Log in").click()
        assert await page.get_by_role("alert").text_content() == "That token is not accepted."
        assert await context.cookies() == []

        await page.get_by_label("Access token").fill(TOKEN)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(stack.console + "/ops")
        (cookie,) = await context.cookies()
        assert cookie["name"] == "voicetap_session" and cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"

        await page.goto(stack.console + "/")
        await page.wait_for_function(
            "document.getElementById('feed-status').textContent.startsWith('Live')",
            timeout=10_000,
        )
        simulation = stack.simulate(
            "--calls", "1", "--ring", "0.5", "--settle", "5", log=tmp_path / "simulate.log"
        )
        await asyncio.to_thread(simulation.wait, 90)
        status, body = await page.evaluate(FETCH, "/api/calls?limit=1")
        assert status == 200, body  # the indexer refuses a request without the bearer
        ccid = await page.evaluate("(b) => JSON.parse(b).items[0].call_control_id", body)
        status, _ = await page.evaluate(FETCH, f"/recordings/{ccid}.wav")
        assert status == 200  # so does the ingest

        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url(stack.console + "/login")
        status, _ = await page.evaluate(FETCH, "/api/calls")
        assert status == 401
    finally:
        await context.close()
