"""Where `voicetap up` binds the servers of call content: loopback unless the user chose."""

import os
from pathlib import Path

import pytest

from voicetap_cli.exposure import loopback_defaults, open_bind_problems
from voicetap_cli.preflight import load_service_settings

NAMES = ["ingest", "indexer"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no .env file here
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "INGEST_", "INDEXER_", "CONSOLE_", "VOICETAP_", "TELNYX_"))
    }


def test_unset_hosts_of_call_content_are_bound_to_loopback(env: dict[str, str]) -> None:
    settings, problems = load_service_settings(NAMES, env)
    assert problems == []
    assert settings["ingest"].model_dump()["ingest_host"] == "0.0.0.0"  # the service's default
    assert open_bind_problems(settings)[0].startswith("voicetap up: INGEST_HOST=0.0.0.0 ")
    defaults = loopback_defaults(settings)
    assert defaults == {"INGEST_HOST": "127.0.0.1", "INDEXER_HOST": "127.0.0.1"}
    settings, _ = load_service_settings(NAMES, {**env, **defaults})
    assert open_bind_problems(settings) == []


def test_a_host_the_user_set_is_kept_and_needs_a_token(env: dict[str, str]) -> None:
    chosen = {**env, "INGEST_HOST": "0.0.0.0"}
    settings, _ = load_service_settings(NAMES, chosen)
    assert loopback_defaults(settings) == {"INDEXER_HOST": "127.0.0.1"}
    assert len(open_bind_problems(settings)) == 1
    for given in ({"VOICETAP_API_TOKEN": "t1,t2"}, {"VOICETAP_INSECURE_NO_AUTH": "true"}):
        settings, _ = load_service_settings(NAMES, {**chosen, **given})
        assert open_bind_problems(settings) == [], given
    settings, _ = load_service_settings(
        NAMES, {**env, "INDEXER_HOST": "0.0.0.0", "INDEXER_API_TOKEN": "alias"}
    )
    assert open_bind_problems(settings)[0].startswith("voicetap up: INGEST_HOST=")
    assert len(open_bind_problems(settings)) == 1  # the indexer's alias counts for the indexer


def test_a_console_the_user_put_beyond_loopback_needs_a_token_too(env: dict[str, str]) -> None:
    chosen = {**env, "CONSOLE_HOST": "0.0.0.0"}
    settings, _ = load_service_settings(["console"], chosen)
    (line,) = open_bind_problems(settings)
    assert line.startswith("voicetap up: CONSOLE_HOST=0.0.0.0 ")
    settings, _ = load_service_settings(["console"], {**chosen, "VOICETAP_API_TOKEN": "t"})
    assert open_bind_problems(settings) == []
    settings, _ = load_service_settings(["console"], env)
    assert loopback_defaults(settings) == {"CONSOLE_HOST": "127.0.0.1"}  # its own default too
