"""Fixtures of the console's browser tests: the stack, Chromium, where screenshots go."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, Stack, start_stack
from tests.system_parts import missing


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    found = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        missing("chromium", "apt-get install -y chromium")
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            await found.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``VOICETAP_SCREENSHOTS`` when set, else a folder of the test run's temporary directory."""
    given = os.environ.get("VOICETAP_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
