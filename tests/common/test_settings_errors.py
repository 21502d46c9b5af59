"""A bad setting is one line naming the variable, the value and what it must look like; a
credential's value is never echoed."""

import pytest
from pydantic import Field, ValidationError, field_validator, model_validator

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


class _Paired(CommonSettings):
    demo_token: str = ""
    demo_enabled: bool = False

    @model_validator(mode="after")
    def _needs_token(self) -> "_Paired":
        if self.demo_enabled and not self.demo_token:
            raise ValueError("DEMO_ENABLED needs DEMO_TOKEN")
        return self


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


def test_a_check_across_settings_is_its_message_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its input is every setting, so echoing it would print credentials."""
    monkeypatch.setenv("DEMO_ENABLED", "true")
    monkeypatch.setenv("DEMO_TOKEN", "")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@localhost:1/0")
    with pytest.raises(ValidationError) as caught:
        _Paired()
    assert settings_errors(_Paired, caught.value) == ["DEMO_ENABLED needs DEMO_TOKEN"]
