"""Executing command entries once, and publishing each outcome once.

A service that owns a kind of media wraps its executor in :class:`CommandRunner` and feeds the
runner's :meth:`handle` to a :class:`~voicetap_common.consumer.StreamConsumer`. A malformed
command is answered on the result topic with the reason and dead-lettered; it never stops the
worker. A command already answered (redelivered, or claimed after a crash) is not executed again;
one that crashed mid-way is executed again with the same Telnyx ``command_id``, which Telnyx
de-duplicates.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from voicetap_common import codec
from voicetap_common.call_control import result_for
from voicetap_common.commands import COMMAND_RESULTS, CommandResult, _Command, parse_command
from voicetap_common.consumer import Undeliverable
from voicetap_common.streams import Entry, Producer
from voicetap_common.topics import dedupe_key

log = logging.getLogger("voicetap.commands")

# Returns what the command allocated (ports, stream URL), or None; raises the SDK's error on failure.
Executor = Callable[[_Command], Awaitable[dict[str, Any] | None]]

RESULT_WINDOW_SECONDS = 7 * 86_400


class CommandRunner:
    def __init__(self, redis: Redis, producer: Producer, executor: Executor, *, executed_by: str, actions: frozenset[str]) -> None:
        self._redis = redis
        self._producer = producer
        self._executor = executor
        self._executed_by = executed_by
        self._actions = actions

    async def handle(self, entries: list[Entry]) -> None:
        for entry in entries:
            await self._handle_one(entry)

    async def _handle_one(self, entry: Entry) -> None:
        try:
            command = parse_command(entry.body)
        except (ValidationError, ValueError) as exc:
            await self._answer_malformed(entry, _readable(exc))
            raise Undeliverable(f"malformed command: {_readable(exc)}") from None
        if command.action not in self._actions:
            reason = f"action {command.action} is not executed by {self._executed_by} (sent to the wrong topic?)"
            await self._answer_malformed(entry, reason, command.id, command.action, command.call_control_id)
            raise Undeliverable(reason)
        if await self._redis.exists(dedupe_key(COMMAND_RESULTS, f"result:{command.id}")):
            log.info("command already answered; not executed again", extra={"command": command.id})
            return
        try:
            allocated = await self._executor(command)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a result event
            result = result_for(command, executed_by=self._executed_by, error=exc)
        else:
            result = result_for(command, executed_by=self._executed_by, allocated=allocated)
        await self._publish(result)

    async def _answer_malformed(
        self, entry: Entry, reason: str, command_id: str | None = None, action: str | None = None, call_control_id: str | None = None
    ) -> None:
        fallback = _loose_fields(entry.body)
        command_id = command_id or fallback.get("id") or entry.event_id or f"entry:{entry.topic}:{entry.entry_id}"
        await self._publish(
            CommandResult(
                id=f"result:{command_id}",
                command_id=command_id,
                action=action or fallback.get("action"),
                call_control_id=call_control_id or fallback.get("call_control_id"),
                correlation_id=fallback.get("correlation_id"),
                ok=False,
                error="malformed",
                detail=reason,
                executed_by=self._executed_by,
            )
        )

    async def _publish(self, result: CommandResult) -> None:
        body = codec.dumps(result.model_dump(mode="json"))
        extra = {"call_control_id": result.call_control_id} if result.call_control_id else {}
        if result.correlation_id:
            extra["correlation_id"] = result.correlation_id
        await self._producer.publish_once(COMMAND_RESULTS, result.id, "voicetap.command.result", body, RESULT_WINDOW_SECONDS, **extra)


def _readable(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False))
    return str(exc)


def _loose_fields(body: bytes) -> dict[str, str]:
    """Whatever string ids a malformed command still has, so its sender can match the answer."""
    try:
        value = codec.loads(body)
    except codec.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k in ("id", "action", "call_control_id", "correlation_id") if isinstance(v := value.get(k), str)}
