"""Transcription commands: on demand from ``voicetap.command.transcription``, and automatic on
answered calls (``INDEXER_AUTO_TRANSCRIBE``), both through the official SDK.

On-demand commands go through the shared :class:`~voicetap_common.command_runner.CommandRunner`:
executed once, outcome on ``voicetap.command.result``. The automatic path builds the same
``TranscriptionStart`` command, with an id derived from the ``call.answered`` event, and runs it
once per call across processes: a worker takes the call's Redis key with SET NX as a short lease
before it sends, and keeps it (for a day) once a lasting outcome is known (started, or a failure
that would fail again: call ended, unknown call, invalid parameters, bad key), so a re-delivered
``call.answered`` or a second worker does nothing. A transient failure (network, 429, Telnyx 5xx)
is not remembered: the lease is released and the handler raises, so the ``call.answered`` entry
stays pending and the group delivers it again after the claim bound, up to
``INDEXER_MAX_DELIVERIES`` times before it is dead-lettered with the error. (Not ``RetryLater``:
that retries the whole batch in place, and would hold every call's transcriptions back while the
Telnyx API is down.) No result is published for a transient failure: results are published once
per command, and the outcome is not known yet. A worker that dies holding the lease lets it
expire; the redelivered event then sends the command again with the same ``command_id``, which
Telnyx de-duplicates for 60 s. Outcomes are published like any command's; a call that has already
ended is logged at info, not as an error.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from voicetap_common.call_control import classify, result_for, send
from voicetap_common.command_runner import RESULT_WINDOW_SECONDS
from voicetap_sdk import codec
from voicetap_sdk.commands import (
    CallCommand,
    ErrorKind,
    TranscriptionEngine,
    TranscriptionStart,
    TranscriptionTracks,
)
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Producer
from voicetap_sdk.topics import COMMAND_RESULTS

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx

log = logging.getLogger("voicetap.transcript_indexer.control")

LEASE_SECONDS = 120
OUTCOME_SECONDS = 86_400
EXECUTED_BY = "transcript_indexer"
TRANSIENT: frozenset[ErrorKind] = frozenset({"network", "rate_limited", "telnyx_error"})


def transcription_key(call_control_id: str) -> str:
    return f"transcript_indexer:transcription_start:{call_control_id}"


class StartDeferred(Exception):
    """An automatic ``transcription_start`` failed transiently: its ``call.answered`` is delivered again later."""


class TelnyxCommands:
    """Sends transcription commands; the SDK client is made by ``connect`` (which imports
    ``telnyx``) on first use."""

    def __init__(self, connect: Callable[[], "AsyncTelnyx"], registry: CollectorRegistry) -> None:
        self._connect = connect
        self._client: AsyncTelnyx | None = None
        self._outcomes = Counter(
            "voicetap_indexer_commands_total",
            "Call Control commands by action and outcome",
            ["command", "outcome"],
            registry=registry,
        )

    async def execute(self, command: CallCommand) -> dict[str, Any] | None:
        """The executor of :class:`CommandRunner`: raises the SDK's error on failure."""
        if self._client is None:
            self._client = self._connect()
        try:
            await send(self._client, command)
        except Exception:
            self._outcomes.labels(command.action, "failed").inc()
            raise
        self._outcomes.labels(command.action, "ok").inc()
        return None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class TranscriptionStarter:
    """``INDEXER_AUTO_TRANSCRIBE``: one ``transcription_start`` per answered call."""

    def __init__(
        self,
        commands: TelnyxCommands,
        redis: RedisClient,
        producer: Producer,
        engine: TranscriptionEngine,
        tracks: TranscriptionTracks,
    ) -> None:
        self._commands = commands
        self._redis = redis
        self._producer = producer
        self._engine = engine
        self._tracks = tracks

    async def start_all(self, answered: list[tuple[str, str]]) -> None:
        """Start transcription on each (call, answered event id), concurrently; raises the first
        failure once every start has finished (the consumer then retries entry by entry)."""
        outcomes = await asyncio.gather(
            *(self.start(call_control_id, event_id) for call_control_id, event_id in answered),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def start(self, call_control_id: str, event_id: str) -> None:
        key = transcription_key(call_control_id)
        if not await self._redis.set(key, "pending", nx=True, ex=LEASE_SECONDS):
            return  # started, failed for good, or in progress elsewhere
        command = TranscriptionStart(
            id=f"auto:{event_id}",
            call_control_id=call_control_id,
            transcription_engine=self._engine,
            transcription_tracks=self._tracks,
        )
        try:
            await self._commands.execute(command)
        except Exception as exc:  # noqa: BLE001 - a transient failure is retried, any other becomes a result event
            kind, detail, _ = classify(exc)
            if kind in TRANSIENT:
                await self._redis.delete(key)
                raise StartDeferred(
                    f"transcription_start on {call_control_id} failed ({kind}: {detail}); retried later"
                ) from exc
            result = result_for(command, executed_by=EXECUTED_BY, error=exc)
        except BaseException:
            await self._redis.delete(key)  # cancelled: let a redelivery try again
            raise
        else:
            result = result_for(command, executed_by=EXECUTED_BY)
            log.info("transcription started", extra={"call_control_id": call_control_id})
        body = codec.dumps(result.model_dump(mode="json"))
        await self._producer.publish_once(
            COMMAND_RESULTS,
            result.id,
            COMMAND_RESULTS,
            body,
            RESULT_WINDOW_SECONDS,
            call_control_id=call_control_id,
        )
        await self._redis.set(
            key, "started" if result.ok else result.error or "failed", ex=OUTCOME_SECONDS
        )
