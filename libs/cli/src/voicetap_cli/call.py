"""``voicetap call ACTION CALL_CONTROL_ID [--option value ...]``: send a command, wait, print the outcome."""

import argparse
import json
import time
import types
import typing
import uuid
from typing import Any

from pydantic import ValidationError
from redis import Redis

from voicetap_common import codec
from voicetap_common.commands import COMMAND_MODELS, COMMAND_RESULTS, topic_for

_NOT_OPTIONS = {"id", "action", "call_control_id"}


def _choices(annotation: Any) -> list[Any] | None:
    """The values of a Literal (possibly inside Optional), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (found := _choices(arg)) is not None:
                return found
        return None
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return None


def _is_structured(annotation: Any) -> bool:
    text = str(annotation)
    return "dict" in text or "list" in text


def add_call_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    call = sub.add_parser(
        "call",
        help="send a Call Control command and wait for its outcome",
        description="Publish a command on its topic; the service that owns it executes it once and answers on "
        f"{COMMAND_RESULTS}. Exit code 0 when Telnyx accepted it, 1 when it failed, 2 on timeout.",
    )
    actions = call.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, model in COMMAND_MODELS.items():
        parser = actions.add_parser(action, help=(model.__doc__ or action).strip().splitlines()[0], description=model.__doc__)
        parser.add_argument("call_control_id", metavar="CALL_CONTROL_ID")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the outcome (default 30)")
        parser.add_argument("--no-wait", action="store_true", help="publish and return without waiting")
        for name, field in model.model_fields.items():
            if name in _NOT_OPTIONS:
                continue
            flag = "--" + name.replace("_", "-")
            text = field.description or ""
            choices = _choices(field.annotation)
            if choices is not None and len(choices) > 1:
                parser.add_argument(flag, dest=name, choices=[str(c) for c in choices], help=text)
            elif choices is not None:
                continue  # a single fixed value: nothing to choose
            elif _is_structured(field.annotation):
                parser.add_argument(flag, dest=name, type=json.loads, help=f"{text} (JSON)".strip())
            else:
                parser.add_argument(flag, dest=name, help=text)


def build_command(args: argparse.Namespace) -> dict[str, Any]:
    model = COMMAND_MODELS[args.action]
    values: dict[str, Any] = {"id": str(uuid.uuid4()), "action": args.action, "call_control_id": args.call_control_id}
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if name in _NOT_OPTIONS or value is None:
            continue
        choices = _choices(field.annotation)
        if choices and isinstance(choices[0], int):
            value = int(value)
        values[name] = value
    return values


def run_call(args: argparse.Namespace, redis: Redis) -> int:
    raw = build_command(args)
    try:
        command = COMMAND_MODELS[args.action].model_validate(raw)
    except ValidationError as exc:
        print(f"invalid command: {exc}")
        return 1
    body = codec.dumps(command.model_dump(mode="json", exclude_none=True))
    last = redis.xrevrange(COMMAND_RESULTS, count=1)
    start = last[0][0] if last else b"0-0"
    redis.xadd(topic_for(command.action), {"id": command.id, "type": command.action, "event": body, "call_control_id": command.call_control_id})
    print(f"sent {command.action} {command.id} for {command.call_control_id}")
    if args.no_wait:
        return 0
    result = _wait_for_result(redis, f"result:{command.id}", start, args.timeout)
    if result is None:
        print(f"no outcome within {args.timeout:.0f} s: is the service that executes {command.action} running?")
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result.get("ok") else 1


def _wait_for_result(redis: Redis, result_id: str, start: bytes, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    cursor = start
    while (remaining := deadline - time.monotonic()) > 0:
        reply = redis.xread({COMMAND_RESULTS: cursor}, count=100, block=max(int(min(remaining, 1.0) * 1000), 1))
        for _, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id
                if fields.get(b"id") == result_id.encode():
                    return codec.loads(fields[b"event"])
    return None
