"""Executing command entries once, and publishing each outcome once.

A service that owns a kind of media wraps its executor in :class:`CommandRunner` and feeds the
runner's :meth:`handle` to a :class:`~voicetap_sdk.consumer.StreamConsumer`. A malformed
command is answered on the result topic with the reason and dead-lettered; it never stops the
worker. A command already answered (redelivered, or claimed after a crash) is not executed again;
one that crashed mid-way is executed again with the same Telnyx ``command_id``, which Telnyx
de-duplicates.

Two deliveries of one command can be in two instances' hands at the same moment (the command
published twice, or an entry claimed from a consumer that was only slow). Whoever executes first
takes the command's execution lock (SET NX, ``lock_seconds``, longer than a command can take) and
releases it only after the result is published. A holder that finds the lock taken waits for
that result and then acknowledges its delivery without executing; after ``wait_seconds`` without
one it raises :class:`~voicetap_sdk.consumer.RetryLater`, so the consumer tries the entry again
in place. A holder that died never releases its lock: it expires, and the next try executes the
command; a runner restarted under the same stable name (``executed_by``: an ingest instance
restarted in place) knows a lock of its earlier life and takes it over at once.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from voicetap_common.call_control import result_for
from voicetap_sdk import codec
from voicetap_sdk.commands import CallCommand, CommandResult, parse_command
from voicetap_sdk.consumer import RetryLater, Undeliverable
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry, Producer
from voicetap_sdk.topics import COMMAND_RESULTS, dedupe_key

log = logging.getLogger("voicetap.commands")

# Returns what the command allocated (ports, stream URL), or None; raises the SDK's error on failure.
Executor = Callable[[CallCommand], Awaitable[dict[str, Any] | None]]

RESULT_WINDOW_SECONDS = 7 * 86_400
# A command takes at most (retries + 1) x the request timeout plus the SDK's waits between tries
# (Retry-After honoured up to 60 s): 3 x 10 s + 2 x 60 s = 150 s with the default settings.
LOCK_SECONDS = 300
WAIT_SECONDS = 10.0

# Deletes the lock only while it is still this holder's (it may have expired and been retaken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# Hands a lock over only while it is still the token seen (an earlier life of the same runner).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""


def lock_key(command_id: str) -> str:
    """The execution lock of a command (in the result topic's slot, like its result marker)."""
    return "{" + COMMAND_RESULTS + "}:executing:" + command_id


class CommandRunner:
    def __init__(
        self,
        redis: RedisClient,
        producer: Producer,
        executor: Executor,
        *,
        executed_by: str,
        actions: frozenset[str],
        lock_seconds: float = LOCK_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._redis = redis
        self._producer = producer
        self._executor = executor
        self._executed_by = executed_by
        self._actions = actions
        self._lock_ms = int(lock_seconds * 1000)
        self._wait_seconds = wait_seconds
        self._release = redis.register_script(_RELEASE)
        self._take_over = redis.register_script(_TAKE_OVER)
        self._life = f"{executed_by}:{uuid.uuid4().hex[:12]}:"  # this process's lock tokens

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
            await self._answer_malformed(
                entry, reason, command.id, command.action, command.call_control_id
            )
            raise Undeliverable(reason)
        token = await self._take_lock(command)
        if token is None:
            log.info("command already answered; not executed again", extra={"command": command.id})
            return
        try:
            try:
                allocated = await self._executor(command)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a result event
                result = result_for(command, executed_by=self._executed_by, error=exc)
            else:
                result = result_for(command, executed_by=self._executed_by, allocated=allocated)
            await self._publish(result)
        finally:  # also when cancelled or unpublished: the next delivery then executes it again
            await self._release(keys=[lock_key(command.id)], args=[token])

    async def _take_lock(self, command: CallCommand) -> str | None:
        """This runner's lock token when it is to execute ``command``; None once it has been answered.

        The lock is taken before the result is looked up, in one round trip: a holder releases only
        after publishing, so whoever takes a released lock also sees the result. Raises
        :class:`RetryLater` while another holder is still executing after ``wait_seconds``."""
        result_key = dedupe_key(COMMAND_RESULTS, f"result:{command.id}")
        deadline = time.monotonic() + self._wait_seconds
        pause = 0.02
        while True:
            token = f"{self._life}{uuid.uuid4().hex}"
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(lock_key(command.id), token, nx=True, px=self._lock_ms)
                pipe.exists(result_key)
                pipe.get(lock_key(command.id))
                taken, answered, holder = await pipe.execute()
            if answered:
                if taken:
                    await self._release(keys=[lock_key(command.id)], args=[token])
                return None
            if taken:
                return token
            if (
                holder is not None
                and self._earlier_life(holder)
                and await self._take_over(
                    keys=[lock_key(command.id)], args=[holder, token, self._lock_ms]
                )
            ):
                log.info(
                    "took over the lock an earlier life of this runner held",
                    extra={"command": command.id},
                )
                return token
            if time.monotonic() >= deadline:
                raise RetryLater(f"command {command.id} is being executed elsewhere; no result yet")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _earlier_life(self, holder: bytes | str) -> bool:
        """The lock is this runner's name's, but not this process's: it was killed holding it."""
        value = holder.decode() if isinstance(holder, bytes) else holder
        return value.startswith(f"{self._executed_by}:") and not value.startswith(self._life)

    async def _answer_malformed(
        self,
        entry: Entry,
        reason: str,
        command_id: str | None = None,
        action: str | None = None,
        call_control_id: str | None = None,
    ) -> None:
        fallback = _loose_fields(entry.body)
        command_id = (
            command_id
            or fallback.get("id")
            or entry.event_id
            or f"entry:{entry.topic}:{entry.entry_id}"
        )
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
        await self._producer.publish_once(
            COMMAND_RESULTS,
            result.id,
            COMMAND_RESULTS,
            body,
            RESULT_WINDOW_SECONDS,
            **extra,
        )


def _readable(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)


def _loose_fields(body: bytes) -> dict[str, str]:
    """Whatever string ids a malformed command still has, so its sender can match the answer."""
    try:
        value = codec.loads(body)
    except codec.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k in ("id", "action", "call_control_id", "correlation_id")
        if isinstance(v := value.get(k), str)
    }
