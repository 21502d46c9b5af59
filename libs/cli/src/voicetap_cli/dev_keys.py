"""The development webhook key pair `voicetap up` trusts when no TELNYX_PUBLIC_KEY is set.

Kept under the data directory so that the simulator, which signs webhooks, and the gateway,
which verifies them, agree across restarts. Never used when a real key is configured.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from voicetap_cli.keys import make_key_pair

FILE_NAME = "dev-webhook-keys.json"


@dataclass(frozen=True)
class DevKeys:
    private_key: str
    public_key: str


def load_or_create(data_dir: Path) -> DevKeys:
    path = data_dir / FILE_NAME
    if path.exists():
        stored = json.loads(path.read_text())
        return DevKeys(stored["private_key"], stored["public_key"])
    private, public = make_key_pair()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"private_key": private, "public_key": public}))
    return DevKeys(private, public)


def load(data_dir: Path) -> DevKeys | None:
    path = data_dir / FILE_NAME
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    return DevKeys(stored["private_key"], stored["public_key"])
