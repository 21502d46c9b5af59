"""A bad setting is one line naming the variable, the value and what it must look like; a
credential's value is never echoed."""

import pytest
from pydantic import Field, ValidationError, field_validator

from voicetap_common.settings import CommonSettings, load_settings, settings_errors


class _Settings(CommonSettings):
    demo_port: int = 8000
    demo_ports: str = "1-2"
    demo_api_key: int = Field(default=0)

    @field_validator("demo_ports")
    @classmethod
    def _range(cls, value: str) -> str:
        if "-" not in value:
            raise ValueError(f"DEMO_PORTS must look like 40000-40999, got {value!r}")
        return value


def test_one_line_per_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PORT", "abc")
    monkeypatch.setenv("DEMO_PORTS", "abc")
    monkeypatch.setenv("DEMO_API_KEY", "s3cret")
    with pytest.raises(ValidationError) as caught:
        _Settings()
    lines = settings_errors(_Settings, caught.value)
    assert lines == [
        "DEMO_PORT='abc': Input should be a valid integer, unable to parse string as an integer",
        "DEMO_PORTS='abc': DEMO_PORTS must look like 40000-40999, got 'abc'",
        "DEMO_API_KEY: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert not any("s3cret" in line for line in lines)


def test_load_settings_exits_2_with_the_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMO_PORT", "abc")
    with pytest.raises(SystemExit) as exited:
        load_settings(_Settings, "voicetap demo")
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "voicetap demo: invalid setting DEMO_PORT='abc': "
        "Input should be a valid integer, unable to parse string as an integer\n"
    )
