"""docs/CONSUMERS.md's quick start, as written, against `voicetap up --demo`: it reads the demo
call's transcriptions, raises an alert for a transcription that says "gift card", and stops on
Ctrl-C with every entry it read acknowledged."""

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis

from telnyx_simulator.signing import WebhookSigner
from tests.cli.test_up import VOICETAP, wait_for_block
from tests.webhook_gateway.conftest import make_event

DOC = Path(__file__).resolve().parents[1] / "docs" / "CONSUMERS.md"


def quick_start() -> str:
    """The first Python block of the document."""
    match = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, "docs/CONSUMERS.md has a Python quick start"
    return match.group(1)


def wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


def test_the_quick_start_names_the_embedded_redis() -> None:
    assert 'Subscriber("redis://127.0.0.1:6399/0"' in quick_start()


@pytest.mark.slow
def test_the_quick_start_runs_as_written_against_the_demo(
    stack_env: dict[str, str],
    tmp_path: Path,
) -> None:
    port = stack_env["VOICETAP_EMBEDDED_REDIS_PORT"]
    script = tmp_path / "quick_start.py"  # the same code, on this test's Redis instead of 6399
    script.write_text(quick_start().replace(":6399/", f":{port}/"))
    out = tmp_path / "stdout.txt"
    with out.open("wb") as stdout:
        stack = subprocess.Popen(
            [VOICETAP, "up", "--demo"], env=stack_env, cwd=tmp_path, stdout=stdout,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    consumer: subprocess.Popen[bytes] | None = None
    redis = Redis(port=int(port))
    try:
        wait_for_block(out, stack)
        consumer = subprocess.Popen([sys.executable, str(script)], env=stack_env, cwd=tmp_path)

        def demo_transcribed() -> bool:
            return bool(redis.exists("telnyx.call.transcription")) and any(
                group["name"] == b"fraud_alerts" and group["entries-read"]
                for group in redis.xinfo_groups("telnyx.call.transcription")
            )

        wait(demo_transcribed, "the demo call's transcriptions read by the quick start")
        keys = orjson.loads((tmp_path / "data" / "dev-webhook-keys.json").read_bytes())
        signer = WebhookSigner.from_private_key(keys["private_key"])
        body = make_event(
            "call.transcription",
            "doc-gift-card",
            transcription_data={"transcript": "Can I pay with a Gift Card?", "is_final": True},
        )
        gateway = f"http://127.0.0.1:{stack_env['GATEWAY_PORT']}/webhooks/telnyx"
        response = httpx.post(gateway, content=body, headers=signer.sign(body), timeout=5)
        assert response.status_code == 200, response.text
        wait(lambda: redis.xlen("acme.alerts") == 1, "one alert on acme.alerts", timeout=30)
        [(_, alert)] = redis.xrange("acme.alerts")
        assert alert == {b"id": b"doc-gift-card", b"call": b"v3:ctrl-1"}

        consumer.send_signal(signal.SIGINT)
        assert consumer.wait(15) == 0, "Ctrl-C: a clean stop"
        assert redis.xpending("telnyx.call.transcription", "fraud_alerts")["pending"] == 0
        read = redis.xlen("telnyx.call.transcription")
        assert read >= 2, "the demo's transcriptions and the test's"
    finally:
        redis.close()
        if consumer is not None and consumer.poll() is None:
            consumer.kill()
            consumer.wait()
        stack.send_signal(signal.SIGINT)
        stack.wait(30)
