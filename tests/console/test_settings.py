"""The console's settings (it may listen beyond loopback only with a token or the explicit insecure
mode; the refusal itself is tested in ``test_access``) and where its login form sends a browser."""

import pytest

from voicetap_common.settings import access_settings
from voicetap_console.login import safe_next
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


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/calls/v3:x?t=12", "/calls/v3:x?t=12"),
        ("/search?q=a%20b", "/search?q=a%20b"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("", "/"),
        ("calls", "/"),
    ],
)
def test_after_logging_in_a_browser_goes_back_to_this_console_only(
    asked: str, goes_to: str
) -> None:
    assert safe_next(asked) == goes_to
