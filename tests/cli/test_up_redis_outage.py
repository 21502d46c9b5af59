"""A running stack whose Redis goes away for seconds: every component says so once when the outage
starts and once when it ends (with its length), no traceback, no line per retry, and the stack
serves again by itself afterwards.

The Redis is the test's own server, given to `voicetap up` as REDIS_URL, so it can be stopped."""

import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.cli.test_up import VOICETAP, wait_for_block
from voicetap_cli.embedded_redis import EmbeddedRedis, free_port

OUTAGE_SECONDS = 5.0
LINE = re.compile(
    r"^\S+ \S+ (?P<level>[A-Z]+)\s+(?P<service>\S+) (?P<logger>[\w.]+): (?P<text>.*)$"
)


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_an_outage_is_two_lines_per_component(stack_env: dict[str, str], tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", free_port())
    redis.start()
    # one ingest process: each worker of a host would say it once, as the component it is
    stack_env.update(REDIS_URL=redis.url, LOG_FORMAT="console", INGEST_WORKERS="1")
    out = tmp_path / "stdout.txt"
    readyz = [f"http://127.0.0.1:{stack_env[p]}/readyz" for p in ("GATEWAY_PORT", "INDEXER_PORT")]
    with out.open("wb") as stdout:
        stack = subprocess.Popen(
            [VOICETAP, "up"], env=stack_env, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE
        )
        try:
            wait_for_block(out, stack)
            redis.stop()
            time.sleep(OUTAGE_SECONDS)
            redis.start()
            deadline = time.monotonic() + 30
            while not all(ready(url) for url in readyz):
                assert time.monotonic() < deadline, "the stack did not serve again after the outage"
                time.sleep(0.2)
            time.sleep(3)  # every loop's next round trip has gone through
        finally:
            stack.send_signal(signal.SIGINT)
            _, err = stack.communicate(timeout=60)
            redis.stop()
    text = err.decode()
    assert stack.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-5000:]
    records = [m.groupdict() for m in map(LINE.match, text.splitlines()) if m]
    started = Counter(
        (r["service"], r["text"].split(" unavailable, retrying until ")[0])
        for r in records
        if " unavailable, retrying until " in r["text"]
    )
    ended = Counter(
        (r["service"], re.split(r" back after \d", r["text"])[0])
        for r in records
        if re.search(r" back after \d", r["text"])
    )
    assert started, "no component said that Redis went away"
    assert started == ended, (started, ended)
    assert set(started.values()) == {1}, f"one line per component when it starts: {started}"
    assert "restarting" not in text, "an outage is no crash"
