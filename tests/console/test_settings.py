"""Where the console may listen: beyond loopback only with a token (or the explicit insecure mode);
the refusal itself is tested in ``test_access``."""

import pytest

from voicetap_common.settings import access_settings
from voicetap_console.settings import ConsoleSettings


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::"])
def test_any_host_is_a_valid_setting(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_HOST", host)
    assert ConsoleSettings().console_host == host


def test_the_session_lasts_twelve_hours_and_the_tokens_are_the_stacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICETAP_API_TOKEN", "a,b")
    settings = ConsoleSettings()
    assert settings.console_session_seconds == 12 * 3600
    assert access_settings(settings).tokens == ("a", "b")
