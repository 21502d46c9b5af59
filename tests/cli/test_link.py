"""`voicetap link`: a real process prints a signed URL that a running service opens without a
header, for that call and what only."""

import asyncio
import os
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.media_ingest.harness import ingest_settings, running
from tests.media_ingest.test_access import CALL, write_recording
from tests.transcript_indexer.harness import indexer_settings, running_indexer

VOICETAP = str(Path(sys.executable).with_name("voicetap"))
TOKENS = "first-link-token,second-link-token"


async def link(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INGEST_", "INDEXER_", "VOICETAP_", "REDIS_"))
    }
    process = await asyncio.create_subprocess_exec(
        VOICETAP,
        "link",
        *args,
        env={**clean, **env},
        cwd=tmp_path,  # no .env file here
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_without_a_key_or_with_a_bad_ttl_it_says_what_to_set(tmp_path: Path) -> None:
    code, out, err = await link(tmp_path, "v3:x")
    assert (code, out) == (1, "")
    assert err == (
        "voicetap link: no key to sign with: set VOICETAP_API_TOKEN (or VOICETAP_LINK_SECRET) "
        "as the services have it\n"
    )
    code, _, err = await link(tmp_path, "v3:x", "--ttl", "0", VOICETAP_API_TOKEN=TOKENS)
    assert code == 1 and err.startswith("voicetap link: --ttl must be between 1 and")


async def test_a_transcript_link_opens_on_the_indexer(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    settings = indexer_settings(
        redis_url, f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, voicetap_api_token=TOKENS
    )
    port = str(settings.indexer_port)
    async with running_indexer(settings), httpx.AsyncClient() as http:
        code, out, err = await link(
            tmp_path, "v3:no-such", "--what", "transcript", "--ttl", "60",
            VOICETAP_API_TOKEN=TOKENS, INDEXER_PORT=port,
        )  # fmt: skip
        assert code == 0, err
        url = out.strip()
        assert url.startswith(f"http://127.0.0.1:{port}/calls/v3%3Ano-such/transcript?expires=")
        opened = await http.get(url)
        assert opened.status_code == 404 and opened.json()["error"] == "no call v3:no-such"
        # signed with another key (a token the indexer does not have): refused
        _, other, _ = await link(
            tmp_path, "v3:no-such", "--what", "transcript",
            VOICETAP_API_TOKEN="not-the-stack-token", INDEXER_PORT=port,
        )  # fmt: skip
        refused = await http.get(other.strip())
        assert refused.status_code == 401 and refused.json()["reason"] == "tampered_link"


async def test_a_recording_link_opens_on_the_ingest(
    redis: Redis, redis_url: str, fake, tmp_path: Path
) -> None:
    content = write_recording(tmp_path)
    settings = ingest_settings(
        tmp_path, redis_url, fake.url, voicetap_api_token=TOKENS, voicetap_link_secret="ls-1"
    )
    async with running(settings) as (_, url), httpx.AsyncClient() as http:
        code, out, err = await link(
            tmp_path, CALL, VOICETAP_API_TOKEN=TOKENS, VOICETAP_LINK_SECRET="ls-1",
            VOICETAP_PUBLIC_INGEST_URL=url,
        )  # fmt: skip
        assert code == 0, err
        opened = await http.get(out.strip())
        assert opened.status_code == 200 and opened.content == content
        assert (await http.get(out.strip().split("?")[0])).status_code == 401
