"""Parameter checks of the Call Control actions the simulator serves, as the real API makes them.

Pure code: a body in, the same body back or an :class:`~telnyx_simulator.errors.ApiError` naming
the field at fault. Enumerations are those of the ``telnyx`` SDK 4.189.0 (generated from Telnyx's
OpenAPI spec).
"""

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from telnyx_simulator.errors import invalid, missing, not_found

Body = dict[str, Any]

STREAM_TRACKS = ("inbound_track", "outbound_track", "both_tracks")
STREAM_CODECS = ("PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default")
BIDIRECTIONAL_MODES = ("mp3", "rtp")
BIDIRECTIONAL_CODECS = ("PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16")
BIDIRECTIONAL_RATES = (8000, 16000, 22050, 24000, 48000)
BIDIRECTIONAL_TARGET_LEGS = ("both", "self", "opposite")
TRANSCRIPTION_ENGINES = (
    "Google", "Telnyx", "Deepgram", "Azure", "xAI", "AssemblyAI", "Speechmatics", "Soniox",
    "Parakeet", "Humain", "Reson8", "Cohere", "A", "B",
)  # fmt: skip
TRANSCRIPTION_TRACKS = ("inbound", "outbound", "both")
MAX_AUTH_TOKEN = 4000
_UDP_TARGET = re.compile(r"^udp:(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(?P<port>\d{1,5})$")


def parse_udp_target(value: str) -> tuple[str, int] | None:
    """``udp:HOST:PORT`` (IPv6 in brackets) as ``(host, port)``, or None when malformed."""
    match = _UDP_TARGET.match(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        return None
    return match["host"].strip("[]"), int(match["port"])


def _string(
    body: Body, field: str, *, required: bool = False, max_len: int | None = None
) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise missing(field)
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if required and not value:
        raise missing(field)
    if max_len is not None and len(value) > max_len:
        raise invalid(field, f"must be at most {max_len} characters")
    return value


def _boolean(body: Body, field: str) -> None:
    value = body.get(field)
    if value is not None and not isinstance(value, bool):
        raise invalid(field, "must be a boolean")


def _choice(body: Body, field: str, choices: tuple[Any, ...]) -> None:
    value = body.get(field)
    if value is not None and (isinstance(value, bool) or value not in choices):
        raise invalid(field, f"must be one of {', '.join(map(str, choices))}")


def _common(body: Body) -> None:
    _string(body, "command_id")
    client_state = _string(body, "client_state")
    if client_state is not None:
        try:
            base64.b64decode(client_state, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("client_state", "must be a valid Base-64 encoded string") from None


def _fork_start(body: Body) -> None:
    rx, tx, target = (_string(body, f) for f in ("rx", "tx", "target"))
    if rx is None and tx is None and target is None:
        raise missing("rx")
    if rx is not None or tx is not None:
        for field, value in (("rx", rx), ("tx", tx)):
            if value is None:
                raise missing(field)
            if parse_udp_target(value) is None:
                raise invalid(field, "must be a network target udp:HOST:PORT")
        if body.get("stream_type") != "decrypted":
            raise invalid("stream_type", "must be 'decrypted' when rx and tx are given")
    if target is not None and parse_udp_target(target) is None:
        raise invalid("target", "must be a network target udp:HOST:PORT")
    _choice(body, "stream_type", ("decrypted",))


def _fork_stop(body: Body) -> None:
    _choice(body, "stream_type", ("raw", "decrypted"))


def _streaming_start(body: Body) -> None:
    url = _string(body, "stream_url", required=True)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise invalid("stream_url", "must be a ws:// or wss:// URL")
    _choice(body, "stream_track", STREAM_TRACKS)
    _choice(body, "stream_codec", STREAM_CODECS)
    _choice(body, "stream_bidirectional_mode", BIDIRECTIONAL_MODES)
    _choice(body, "stream_bidirectional_codec", BIDIRECTIONAL_CODECS)
    _choice(body, "stream_bidirectional_sampling_rate", BIDIRECTIONAL_RATES)
    _choice(body, "stream_bidirectional_target_legs", BIDIRECTIONAL_TARGET_LEGS)
    _string(body, "stream_auth_token", max_len=MAX_AUTH_TOKEN)
    params = body.get("custom_parameters")
    if params is not None and not (
        isinstance(params, list)
        and all(
            isinstance(p, dict)
            and isinstance(p.get("name"), str)
            and isinstance(p.get("value"), str)
            for p in params
        )
    ):
        raise invalid("custom_parameters", "must be a list of {name, value} strings")
    _boolean(body, "enable_dialogflow")
    dialogflow = body.get("dialogflow_config")
    if dialogflow is not None:
        if not isinstance(dialogflow, dict):
            raise invalid("dialogflow_config", "must be an object")
        for name in ("analyze_sentiment", "partial_automated_agent_reply"):
            if not isinstance(dialogflow.get(name, False), bool):
                raise invalid("dialogflow_config", f"{name} must be a boolean")


def _streaming_stop(body: Body) -> None:
    _string(body, "stream_id")


def _transcription_start(body: Body) -> None:
    _choice(body, "transcription_engine", TRANSCRIPTION_ENGINES)
    _choice(body, "transcription_tracks", TRANSCRIPTION_TRACKS)
    config = body.get("transcription_engine_config")
    if config is not None and not isinstance(config, dict):
        raise invalid("transcription_engine_config", "must be an object")


def _no_parameters(body: Body) -> None:
    """Actions whose own parameters the simulator does not act on (answer, hangup, stops)."""


VALIDATORS: Mapping[str, Callable[[Body], None]] = {
    "answer": _no_parameters,
    "hangup": _no_parameters,
    "fork_start": _fork_start,
    "fork_stop": _fork_stop,
    "streaming_start": _streaming_start,
    "streaming_stop": _streaming_stop,
    "transcription_start": _transcription_start,
    "transcription_stop": _no_parameters,
}


def validate(action: str, body: Body) -> None:
    """Raise :class:`ApiError` (404 for an action the simulator does not serve, else 422)."""
    check = VALIDATORS.get(action)
    if check is None:
        raise not_found(f"The action '{action}' is not served by the simulator.")
    _common(body)
    check(body)
