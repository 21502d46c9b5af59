"""Sending Call Control commands through the official ``telnyx`` SDK, and naming their failures.

``import telnyx`` costs about a second, so it happens only in :func:`telnyx_client`, in the
processes that send commands, never on a hot path or at import.
"""

import logging
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from voicetap_common.settings import CommonSettings
from voicetap_sdk.commands import CallCommand, CommandResult, ErrorKind

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx

log = logging.getLogger("voicetap.call_control")

CALL_ENDED_CODE = "90018"

_SDK_METHODS = {
    "fork_start": "start_forking",
    "fork_stop": "stop_forking",
    "streaming_start": "start_streaming",
    "streaming_stop": "stop_streaming",
    "transcription_start": "start_transcription",
    "transcription_stop": "stop_transcription",
}


class TelnyxApiSettings(BaseSettings):
    """Mixed into the settings of a service that sends commands."""

    # The same reading as CommonSettings: mixed in after it, BaseSettings' defaults would win, and
    # the service would ignore `.env` and refuse the other services' keys in it.
    model_config = CommonSettings.model_config

    telnyx_api_key: SecretStr | None = Field(
        default=None,
        description="API key (v2) of the Telnyx account; needed to send Call Control commands.",
    )
    telnyx_base_url: str | None = Field(
        default=None,
        description="Call Control API base URL; default the SDK's (`https://api.telnyx.com/v2`). Tests point it at the simulator.",
    )
    telnyx_max_retries: int = Field(
        default=2, ge=0, description="SDK retries of 408/409/429/5xx and connection errors."
    )
    telnyx_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Bound on one Call Control request."
    )


class MissingApiKey(Exception):
    """No ``TELNYX_API_KEY``: commands cannot be sent (answered as ``bad_key``)."""


class NoCapacity(Exception):
    """The executing service has no room for the command (e.g. every UDP port pair in use)."""


def telnyx_client(settings: TelnyxApiSettings) -> "AsyncTelnyx":
    """The SDK's async client; raises :class:`MissingApiKey` without a key."""
    if settings.telnyx_api_key is None:
        raise MissingApiKey(
            "TELNYX_API_KEY is not set: this service cannot send Call Control commands"
        )
    from telnyx import AsyncTelnyx

    return AsyncTelnyx(
        api_key=settings.telnyx_api_key.get_secret_value(),
        base_url=settings.telnyx_base_url,
        max_retries=settings.telnyx_max_retries,
        timeout=settings.telnyx_timeout_seconds,
    )


async def send(client: "AsyncTelnyx", command: CallCommand, **overrides: Any) -> None:
    """Send ``command`` (with ``overrides``, e.g. the targets media_ingest allocated) through the SDK."""
    method = getattr(client.calls.actions, _SDK_METHODS[command.action])
    await method(command.call_control_id, **{**command.sdk_arguments(), **overrides})


def classify(exc: BaseException) -> tuple[ErrorKind, str, list[dict[str, Any]] | None]:
    """The kind of a failed command, a readable detail, and Telnyx's own error objects."""
    import telnyx

    if isinstance(exc, MissingApiKey):
        return "bad_key", str(exc), None
    if isinstance(exc, NoCapacity):
        return "no_capacity", str(exc), None
    if isinstance(exc, telnyx.APIConnectionError):
        return "network", f"could not reach the Telnyx API: {exc}", None
    if not isinstance(exc, telnyx.APIStatusError):
        return "internal", repr(exc), None
    errors = _telnyx_errors(exc.body)
    detail = "; ".join(filter(None, (e.get("detail") or e.get("title") for e in errors))) or str(
        exc
    )
    codes = {str(e.get("code")) for e in errors}
    status = exc.status_code
    kind: ErrorKind
    if CALL_ENDED_CODE in codes:
        kind = "call_ended"
    elif status == 401:
        kind = "bad_key"
    elif status == 403:
        kind = "not_permitted"
    elif status == 404:
        kind = "unknown_call"
    elif status in (400, 422):
        kind = "invalid_parameters"
    elif status == 429:
        kind = "rate_limited"
    else:
        kind = "telnyx_error"
    return kind, f"{status}: {detail}", errors or None


def _telnyx_errors(body: object) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def result_for(
    command: CallCommand,
    *,
    executed_by: str,
    error: BaseException | None = None,
    allocated: dict[str, Any] | None = None,
) -> CommandResult:
    """The result event of ``command``: ok, or the classified failure of ``error``. An executor
    that had to send Telnyx another ``command_id`` than the command's own (so that a re-execution
    with other parameters is not de-duplicated away) names it in ``allocated["telnyx_command_id"]``."""
    allocated = dict(allocated) if allocated is not None else None
    sent = allocated.pop("telnyx_command_id", None) if allocated is not None else None
    base: dict[str, Any] = dict(
        id=f"result:{command.id}",
        command_id=command.id,
        action=command.action,
        call_control_id=command.call_control_id,
        correlation_id=command.correlation_id,
        telnyx_command_id=sent or command.telnyx_command_id(),
        allocated=allocated,
        executed_by=executed_by,
    )
    if error is None:
        return CommandResult(ok=True, **base)
    kind, detail, errors = classify(error)
    level = logging.INFO if kind == "call_ended" else logging.WARNING
    log.log(
        level,
        "command failed",
        extra={
            "action": base["action"],
            "call_control_id": command.call_control_id,
            "error": kind,
            "detail": detail,
        },
    )
    return CommandResult(ok=False, error=kind, detail=detail, telnyx_errors=errors, **base)
