"""The development keys of local mode: used by `voicetap up` when no real Telnyx keys are set.

The webhook key pair: the gateway trusts its public half, the simulator signs with its private
half. The API key: the services send Call Control commands with it, the simulator's fake API
accepts it. Kept under the data directory so that all agree across restarts; never used when
real keys are configured.
"""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from voicetap_cli.keys import make_key_pair

FILE_NAME = "dev-webhook-keys.json"


@dataclass(frozen=True)
class DevKeys:
    private_key: str
    public_key: str
    api_key: str


def load_or_create(data_dir: Path) -> DevKeys:
    path = data_dir / FILE_NAME
    if path.exists():
        stored = json.loads(path.read_text())
        if "api_key" in stored:
            return DevKeys(stored["private_key"], stored["public_key"], stored["api_key"])
    private, public = make_key_pair()
    keys = DevKeys(private, public, "KEYlocal_" + secrets.token_hex(16))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(
            {
                "private_key": keys.private_key,
                "public_key": keys.public_key,
                "api_key": keys.api_key,
            }
        )
    )
    return keys
