"""``voicetap call ACTION CALL_CONTROL_ID [--option value ...]``: send a command, wait, print the outcome."""

import argparse
import json
import sys
import time
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicetap_cli.failures import CommandFailed
from voicetap_common.command_line import voicetap_command
from voicetap_sdk import codec
from voicetap_sdk.commands import (
    COMMAND_MODELS,
    TranscriptionEngine,
    TranscriptionTracks,
    topic_for,
)
from voicetap_sdk.redis_client import SyncRedisClient
from voicetap_sdk.topics import COMMAND_RESULTS

_NOT_OPTIONS = {"id", "action", "call_control_id"}


@dataclass(frozen=True)
class _Option:
    """One command-line option of an action, derived from a field of its command model."""

    name: str
    kind: Literal["text", "choice", "json", "flag"]
    help: str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        return "JSON" if self.kind == "json" else self.name.upper()

    def invocation(self) -> str:
        """How the option is written, as in the action's usage line."""
        if self.kind == "flag":
            return f"{self.flag} | --no-{self.flag[2:]}"
        return f"{self.flag} {'{' + ','.join(self.choices) + '}' if self.kind == 'choice' else self.metavar}"


def _unwrap(annotation: Any) -> list[Any]:
    """The members of a union (``X | None`` included), else the annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _choices(annotation: Any) -> list[Any] | None:
    """The values of a Literal (possibly inside Optional), else None."""
    for arg in _unwrap(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    return None


def _is_structured(annotation: Any) -> bool:
    """A list, a mapping or a nested model: given on the command line as JSON."""
    return any(
        typing.get_origin(arg) in (list, dict)
        or (isinstance(arg, type) and issubclass(arg, BaseModel))
        for arg in _unwrap(annotation)
    )


def _options(model: type[BaseModel]) -> list[_Option]:
    options: list[_Option] = []
    for name, field in model.model_fields.items():
        if name in _NOT_OPTIONS:
            continue
        text = field.description or ""
        choices = _choices(field.annotation)
        if choices is not None:
            if len(choices) > 1:  # a single fixed value: nothing to choose
                options.append(_Option(name, "choice", text, tuple(str(c) for c in choices)))
        elif _is_structured(field.annotation):
            options.append(_Option(name, "json", text))
        elif _unwrap(field.annotation) == [bool]:
            options.append(_Option(name, "flag", text))
        else:
            options.append(_Option(name, "text", text))
    return options


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0].replace("``", "")


def actions_epilog() -> str:
    """Every action with its options, for ``voicetap call --help`` (generated from the command models)."""
    lines = ["actions and their options (`voicetap call ACTION --help` describes each option):"]
    for action, model in COMMAND_MODELS.items():
        lines += ["", f"  {action} CALL_CONTROL_ID", f"      {_summary(model)}"]
        lines += [f"      {option.invocation()}" for option in _options(model)]
    lines += ["", "every action also takes --timeout SECONDS (default 30) and --no-wait."]
    return "\n".join(lines)


def add_call_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    call = sub.add_parser(
        "call",
        help="send a Call Control command and wait for its outcome",
        description="Publish a command on its topic; the service that owns it executes it once and answers on\n"
        f"{COMMAND_RESULTS}. Exit code 0 when Telnyx accepted it, 1 when it failed, 2 on timeout.",
        epilog=actions_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = call.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, model in COMMAND_MODELS.items():
        parser = actions.add_parser(
            action, help=_summary(model), description=(model.__doc__ or "").replace("``", "")
        )
        parser.add_argument("call_control_id", metavar="CALL_CONTROL_ID")
        parser.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="seconds to wait for the outcome (default 30)",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="publish and return without waiting"
        )
        for option in _options(model):
            if option.kind == "choice":
                parser.add_argument(
                    option.flag, dest=option.name, choices=option.choices, help=option.help
                )
            elif option.kind == "json":
                parser.add_argument(
                    option.flag,
                    dest=option.name,
                    type=_json_value,
                    metavar=option.metavar,
                    help=option.help,
                )
            elif option.kind == "flag":
                parser.add_argument(
                    option.flag,
                    dest=option.name,
                    action=argparse.BooleanOptionalAction,
                    help=option.help,
                )
            else:
                parser.add_argument(
                    option.flag, dest=option.name, metavar=option.metavar, help=option.help
                )


def _json_value(text: str) -> Any:
    """The argparse type of a structured option: a bad value is refused like any bad argument."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None


class TranscriptionDefaults(BaseSettings):
    """How the stack transcribes: the indexer's settings of the same names, read from the same
    environment, so that a `transcription_start` without options transcribes like the stack."""

    model_config = SettingsConfigDict(extra="ignore")

    indexer_transcription_engine: TranscriptionEngine = "Telnyx"
    indexer_transcription_tracks: TranscriptionTracks = "both"


@dataclass(frozen=True)
class CallControlApi:
    """Where the services send Call Control commands, for the hint when it cannot be reached."""

    url: str
    local: bool  # local mode: the simulator's fake API


def build_command(args: argparse.Namespace) -> dict[str, Any]:
    model = COMMAND_MODELS[args.action]
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "action": args.action,
        "call_control_id": args.call_control_id,
    }
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if name in _NOT_OPTIONS or value is None:
            continue
        choices = _choices(field.annotation)
        if choices and isinstance(choices[0], int):
            value = int(value)
        values[name] = value
    return values


def _invalid(exc: ValidationError) -> str:
    """A refused command in one line: each bad option with what is wrong with it."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"--{where.replace('_', '-')}: {message}" if where else message)
    return "; ".join(problems)


def run_call(
    args: argparse.Namespace,
    redis: SyncRedisClient,
    api: CallControlApi,
    defaults: TranscriptionDefaults,
) -> int:
    raw = build_command(args)
    if args.action == "transcription_start":  # options not given: as the stack transcribes
        raw = {
            "transcription_engine": defaults.indexer_transcription_engine,
            "transcription_tracks": defaults.indexer_transcription_tracks,
            **raw,
        }
    try:
        command = COMMAND_MODELS[args.action].model_validate(raw)
    except ValidationError as exc:
        raise CommandFailed(f"{args.action}: {_invalid(exc)}", status=2) from None
    body = codec.dumps(command.model_dump(mode="json", exclude_none=True))
    last = cast("list[tuple[bytes, object]]", redis.xrevrange(COMMAND_RESULTS, count=1))
    start = last[0][0] if last else b"0-0"
    redis.xadd(
        topic_for(command.action),
        {
            "id": command.id,
            "type": command.action,
            "event": body,
            "call_control_id": command.call_control_id,
        },
    )
    print(f"sent {command.action} {command.id} for {command.call_control_id}")
    if args.no_wait:
        return 0
    result = _wait_for_result(redis, f"result:{command.id}", start, args.timeout)
    if result is None:
        print(
            f"no outcome within {args.timeout:.0f} s: is the service that executes {command.action} running?"
        )
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    if result.get("error") == "network":
        print(_unreachable(api), file=sys.stderr)
    return 0 if result.get("ok") else 1


def _unreachable(api: CallControlApi) -> str:
    if not api.local:
        return (
            f"the Call Control API at {api.url} could not be reached from the services "
            "executing commands: check their TELNYX_BASE_URL and network"
        )
    return (
        f"the Call Control API at {api.url} could not be reached: in local mode (no TELNYX_API_KEY) "
        "it is the simulator's fake API, which runs only while "
        f"`{voicetap_command('simulate')}` or `{voicetap_command('up --demo')}` runs"
    )


def _wait_for_result(
    redis: SyncRedisClient, result_id: str, start: bytes, timeout: float
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    cursor = start
    while (remaining := deadline - time.monotonic()) > 0:
        reply = cast(  # the client never decodes (RESP2, bytes); None on time-out
            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
            redis.xread(
                {COMMAND_RESULTS: cursor}, count=100, block=max(int(min(remaining, 1.0) * 1000), 1)
            ),
        )
        for _, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id
                if fields.get(b"id") == result_id.encode():
                    result: dict[str, Any] = codec.loads(fields[b"event"])
                    return result
    return None
