"""Starting Telnyx transcription on answered calls (``INDEXER_AUTO_TRANSCRIBE``), once per call.

Once across processes: a worker takes the call's Redis key with SET NX as a short lease before it
sends the command, and keeps it (for a day) once the outcome is known, so a re-delivered
``call.answered`` or a second worker finds it and does nothing. A worker that dies holding the
lease lets it expire; the redelivered event then sends the command again with the same
``command_id`` (``transcription_start:<event id>``), which Telnyx de-duplicates for 60 s.

The SDK retries 429, 5xx and connection errors itself (TELNYX.md); what still fails is logged and
published as ``voicetap.command.failed``. A call that has already ended (422, code 90018) is not an
error. The ``telnyx`` package is imported only when auto-transcription is on.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from voicetap_common.streams import Producer

from transcript_indexer.messages import COMMAND_FAILED, CommandFailed, CommandFailedPayload

if TYPE_CHECKING:
    import telnyx

log = logging.getLogger("voicetap.transcript_indexer.control")

LEASE_SECONDS = 120
OUTCOME_SECONDS = 86_400
CALL_ENDED_CODE = "90018"


def transcription_key(call_control_id: str) -> str:
    return f"transcript_indexer:transcription_start:{call_control_id}"


def _error_code(body: object) -> str | None:
    """The first Telnyx error code of an error body (``{"errors": [{"code": "90018", ...}]}``)."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = errors[0].get("code")
            return None if code is None else str(code)
    return None


class TranscriptionStarter:
    def __init__(
        self,
        client: "telnyx.AsyncTelnyx",
        redis: Redis,
        producer: Producer,
        engine: str,
        tracks: str,
        registry: CollectorRegistry,
    ) -> None:
        self._client = client
        self._redis = redis
        self._producer = producer
        self._engine = engine
        self._tracks = tracks
        self._commands = Counter(
            "voicetap_indexer_commands_total", "Call control commands by outcome", ["command", "outcome"], registry=registry
        )

    async def start_all(self, answered: list[tuple[str, str]]) -> None:
        """Start transcription on each (call, answered event id), concurrently."""
        await asyncio.gather(*(self.start(call_control_id, event_id) for call_control_id, event_id in answered))

    async def start(self, call_control_id: str, event_id: str) -> None:
        key = transcription_key(call_control_id)
        if not await self._redis.set(key, "pending", nx=True, ex=LEASE_SECONDS):
            return  # started, failed for good, or in progress elsewhere
        import telnyx

        command_id = f"transcription_start:{event_id}"
        extra = {"call_control_id": call_control_id, "command_id": command_id}
        try:
            await self._client.calls.actions.start_transcription(
                call_control_id,
                transcription_engine=self._engine,  # type: ignore[arg-type]
                transcription_tracks=self._tracks,
                command_id=command_id,
            )
            outcome = "started"
            log.info("transcription started", extra=extra)
        except telnyx.APIStatusError as exc:
            code = _error_code(exc.body)
            if exc.status_code == 422 and code == CALL_ENDED_CODE:
                outcome = "call_ended"
                log.info("call ended before transcription could start", extra=extra)
            else:
                outcome = "failed"
                await self._failed(call_control_id, command_id, event_id, exc.status_code, code, str(exc))
        except telnyx.APIConnectionError as exc:
            outcome = "failed"
            await self._failed(call_control_id, command_id, event_id, None, None, str(exc))
        except BaseException:
            await self._redis.delete(key)  # cancelled or a bug: let a redelivery try again
            raise
        self._commands.labels("transcription_start", outcome).inc()
        await self._redis.set(key, outcome, ex=OUTCOME_SECONDS)

    async def _failed(
        self, call_control_id: str, command_id: str, event_id: str, status: int | None, code: str | None, detail: str
    ) -> None:
        log.error(
            "transcription_start failed",
            extra={"call_control_id": call_control_id, "command_id": command_id, "status": status, "code": code, "error": detail},
        )
        failure_id = f"{command_id}:failed"
        event = CommandFailed(
            id=failure_id,
            occurred_at=datetime.now(UTC),
            payload=CommandFailedPayload(
                call_control_id=call_control_id,
                command="transcription_start",
                command_id=command_id,
                status_code=status,
                error_code=code,
                detail=detail,
                caused_by=event_id,
            ),
        )
        await self._producer.publish_model(COMMAND_FAILED, failure_id, COMMAND_FAILED, event, call_control_id=call_control_id)


def create_client(api_key: str, base_url: str | None) -> Any:
    """The SDK's async client; imports ``telnyx`` only now."""
    import telnyx

    return telnyx.AsyncTelnyx(api_key=api_key, base_url=base_url)
