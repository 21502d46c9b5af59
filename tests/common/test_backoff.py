"""The one retry helper: pauses double up to the cap, a stop cuts a pause short, and an outage is two
log lines (start, end with its length) however many attempts fail in between."""

import asyncio
import logging
import time

import pytest

from voicetap_sdk.backoff import Backoff

log = logging.getLogger("voicetap.test.backoff")


async def test_pauses_double_up_to_the_cap_and_reset_on_success() -> None:
    backoff = Backoff("redis", log, first=0.01, cap=0.04)
    pauses = []
    for _ in range(4):
        pauses.append(backoff.pause)
        await backoff.failed(ConnectionError("refused"))
    assert pauses == [0.01, 0.02, 0.04, 0.04]
    backoff.succeeded()
    assert backoff.pause == 0.01 and backoff.failures == 0


async def test_stop_cuts_the_pause_short() -> None:
    backoff = Backoff("redis", log, first=30.0, cap=30.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    await backoff.failed(ConnectionError("refused"), stop)
    assert time.monotonic() - started < 5


async def test_an_outage_is_two_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    backoff = Backoff("redis", log, first=0.001, cap=0.001)
    for _ in range(50):
        await backoff.failed(ConnectionError("Error 111 connecting to 127.0.0.1:1.\nmore"))
    backoff.succeeded()
    backoff.succeeded()
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert len(lines) == 2, lines
    assert lines[0] == (
        "redis unavailable, retrying until it is back: "
        "ConnectionError: Error 111 connecting to 127.0.0.1:1."
    )
    assert lines[1].startswith("redis back after ") and lines[1].endswith("(50 failed attempts)")
