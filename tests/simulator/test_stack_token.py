"""The simulator's checks carry the stack's bearer: the first token of ``VOICETAP_API_TOKEN``
(what a rotation puts first), else the indexer's older ``INDEXER_API_TOKEN``."""

from pathlib import Path

import pytest

from telnyx_simulator.settings import SimulatorSettings


@pytest.mark.parametrize(
    ("env", "token"),
    [
        ({}, None),
        ({"INDEXER_API_TOKEN": "alias"}, "alias"),
        ({"VOICETAP_API_TOKEN": "new, old", "INDEXER_API_TOKEN": "alias"}, "new"),
    ],
)
def test_the_stack_token(
    env: dict[str, str], token: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file here
    for name in ("VOICETAP_API_TOKEN", "INDEXER_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert SimulatorSettings().stack_token() == token
