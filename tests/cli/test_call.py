"""`voicetap call` as a user runs it, with the indexer executing against the fake Telnyx API."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.conftest import API_KEY, Fake
from tests.transcript_indexer.harness import indexer_settings, running_indexer
from voicetap_cli.embedded_redis import free_port

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
NOT_ON_PATH = "/usr/bin:/bin"  # `voicetap` is not there: hints say `python3 dev.py ...`
STACK_SETTINGS = ("TELNYX_API_KEY", "TELNYX_BASE_URL", "INDEXER_TRANSCRIPTION_ENGINE")


async def voicetap_call(redis_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if k not in STACK_SETTINGS}
    process = await asyncio.create_subprocess_exec(
        VOICETAP, "call", *args, "--timeout", "20",
        env={**base, "REDIS_URL": redis_url, "PATH": NOT_ON_PATH, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_transcription_start_without_options_transcribes_as_the_stack_does(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    call = fake.state.create_call()
    fake.state.answer_call(call.call_control_id)
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
        telnyx_api_key=API_KEY, telnyx_base_url=f"{fake.url}/v2",
    )  # fmt: skip
    async with running_indexer(settings):
        code, out, err = await voicetap_call(
            redis_url,
            "transcription_start",
            call.call_control_id,
            INDEXER_TRANSCRIPTION_ENGINE="Deepgram",
        )
        assert code == 0, out + err
        [request] = fake.state.requests_for(call.call_control_id, "transcription_start")
        assert request.body["transcription_engine"] == "Deepgram"  # INDEXER_TRANSCRIPTION_ENGINE
        assert request.body["transcription_tracks"] == "both"  # the indexer's default


async def test_a_bad_indexer_transcription_setting_is_named_in_one_line(redis_url: str) -> None:
    code, out, err = await voicetap_call(
        redis_url, "transcription_start", "v3:x", INDEXER_TRANSCRIPTION_TRACKS="left"
    )
    assert err.splitlines() == [
        "voicetap call: invalid setting INDEXER_TRANSCRIPTION_TRACKS='left': "
        "Input should be 'inbound', 'outbound' or 'both'"
    ]
    assert code == 2 and out == ""


async def test_an_unreachable_api_in_local_mode_names_it_and_the_simulator(
    redis: Redis, redis_url: str, fake: Fake, tmp_path: Path
) -> None:
    dead = free_port()
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
        telnyx_api_key=API_KEY, telnyx_base_url=f"http://127.0.0.1:{dead}/v2",
        telnyx_max_retries=0,
    )  # fmt: skip
    async with running_indexer(settings):
        code, out, err = await voicetap_call(
            redis_url, "transcription_stop", "v3:x", SIMULATOR_API_PORT=str(dead)
        )
    assert code == 1, out + err
    assert '"error": "network"' in out
    assert err.splitlines() == [
        f"the Call Control API at http://127.0.0.1:{dead}/v2 could not be reached: in local mode "
        "(no TELNYX_API_KEY) it is the simulator's fake API, which runs only while "
        "`python3 dev.py simulate` or `python3 dev.py up --demo` runs"
    ]


async def test_an_unreachable_api_named_by_telnyx_base_url(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    dead = free_port()
    url = f"http://127.0.0.1:{dead}/v2"
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path,
        telnyx_api_key=API_KEY, telnyx_base_url=url, telnyx_max_retries=0,
    )  # fmt: skip
    async with running_indexer(settings):
        code, out, err = await voicetap_call(
            redis_url, "transcription_stop", "v3:x", TELNYX_API_KEY="KEYx", TELNYX_BASE_URL=url
        )
    assert code == 1, out + err
    assert err.splitlines() == [
        f"the Call Control API at {url} could not be reached from the services "
        "executing commands: check their TELNYX_BASE_URL and network"
    ]
