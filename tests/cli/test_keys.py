"""`voicetap keys` as a user runs it: the public key it prints is one the gateway trusts, and it
never touches a key pair already on disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings

VOICETAP = str(Path(sys.executable).with_name("voicetap"))


def keys(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """``voicetap keys``: (the value of its TELNYX_PUBLIC_KEY= line, the private key it printed)."""
    done = subprocess.run(
        [VOICETAP, "keys"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    public = [
        line.removeprefix("TELNYX_PUBLIC_KEY=")
        for line in done.stdout.splitlines()
        if line.startswith("TELNYX_PUBLIC_KEY=")
    ]
    private = [
        line.rsplit(": ", 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith("# private key")
    ]
    assert len(public) == 1 and len(private) == 1, done.stdout
    return public[0], private[0]


async def test_the_printed_public_key_verifies_webhooks_signed_with_the_printed_private_key(
    redis: Redis, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public, private = keys(dict(os.environ), tmp_path)
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", public)  # as a user sets it, from the printed line
    settings = GatewaySettings(redis_url=redis_url, voicetap_data_dir=tmp_path)
    assert settings.telnyx_public_key == public
    signer, stranger = WebhookSigner.from_private_key(private), WebhookSigner.generate()
    body, forged = make_event("call.answered", "keys-1"), make_event("call.answered", "keys-2")
    async with serve(build_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        signed = await client.post("/webhooks/telnyx", content=body, headers=signer.sign(body))
        refused = await client.post(
            "/webhooks/telnyx", content=forged, headers=stranger.sign(forged)
        )
    assert signed.status_code == 200, signed.text
    assert refused.status_code == 401 and "signature does not match" in refused.json()["error"]
    assert [fields[b"id"] for _, fields in await redis.xrange("telnyx.call.answered")] == [
        b"keys-1"
    ]


def test_keys_prints_a_new_pair_each_time_and_leaves_the_stacks_key_pair_alone(
    tmp_path: Path,
) -> None:
    """It writes nothing: the development key pair `voicetap up` keeps under VOICETAP_DATA_DIR (and
    the simulator signs with) stays as it was, and so does the working directory."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    existing = WebhookSigner.generate()
    stored = json.dumps(
        {
            "private_key": existing.private_key,
            "public_key": existing.public_key,
            "api_key": "KEYlocal_x",
        }
    )
    (data_dir / "dev-webhook-keys.json").write_text(stored)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = {**os.environ, "VOICETAP_DATA_DIR": str(data_dir)}
    first, second = keys(env, tmp_path), keys(env, tmp_path)
    assert first != second and existing.public_key not in (first[0], second[0])
    assert (data_dir / "dev-webhook-keys.json").read_text() == stored
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
