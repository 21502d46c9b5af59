"""Call lifecycle webhooks (``telnyx.call.*``, ``telnyx.streaming.*``) applied to this instance's calls.

- ``call.answered``: by ``INGEST_MODE``, ``fork_start`` to a port pair here, or ``streaming_start``
  to this instance's WebSocket with a fresh per-call token;
- ``call.hangup``: a tombstone (a late ``call.answered`` starts nothing), and the call finished:
  recording completed, ports released, ``voicetap.recording.completed`` published once;
- ``call.fork.stopped``, ``streaming.failed``: the call is paused (its recording kept, the rest
  silent and listed as paused) until media resumes, the call hangs up, or
  ``INGEST_PAUSED_TIMEOUT_SECONDS`` pass; one about an operation this instance has since replaced
  (Telnyx delivers late and out of order) changes nothing. A Call Control answer that the call has
  already ended is not an error.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from media_ingest.calls.call import Call
from media_ingest.calls.registry import CallRegistry
from media_ingest.commands import MediaCommands
from media_ingest.endings import CallEndings
from media_ingest.events import ErrorReporter
from media_ingest.keys import ENDED_PREFIX, ENDED_TTL
from media_ingest.locks import CallLocks
from media_ingest.ports import PortsExhausted
from media_ingest.tokens import StreamTokens
from voicetap_common.call_control import classify
from voicetap_sdk import codec, topics
from voicetap_sdk.commands import ForkStart, StreamingStart
from voicetap_sdk.consumer import Undeliverable
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry

log = logging.getLogger("voicetap.media_ingest.lifecycle")

# A fork.stopped webhook this soon after this instance (re)started the fork is the old fork's.
FORK_STOP_GRACE = 2.0
IngestMode = Literal["fork", "stream", "off"]


class Lifecycle:
    def __init__(
        self,
        redis: RedisClient,
        registry: CallRegistry,
        commands: MediaCommands,
        endings: CallEndings,
        tokens: StreamTokens,
        locks: CallLocks,
        errors: ErrorReporter,
        spill: Callable[[Entry], Awaitable[str | None]],
        *,
        mode: IngestMode,
    ) -> None:
        """``spill(entry)``: hand a new call to an instance with free ports (its name, or None)."""
        self._redis = redis
        self._registry = registry
        self._commands = commands
        self._endings = endings
        self._tokens = tokens
        self._locks = locks
        self._errors = errors
        self._spill = spill
        self._mode = mode

    async def on_event(self, entry: Entry, call_control_id: str | None) -> None:
        if not call_control_id:
            raise Undeliverable("event without call_control_id")
        event_type = entry.event_type or entry.topic.removeprefix(topics.TELNYX_PREFIX)
        try:
            data = entry.json().get("data", {})
        except (codec.JSONDecodeError, AttributeError) as exc:
            raise Undeliverable(f"event body is not a webhook: {exc}") from None
        payload = data.get("payload") or {}
        async with self._locks.hold(call_control_id):
            if event_type == "call.answered":
                await self._on_answered(
                    entry, call_control_id, entry.event_id or str(data.get("id"))
                )
            elif event_type == "call.hangup":
                await self._on_hangup(call_control_id)
            elif event_type == "call.fork.stopped":
                await self._on_fork_stopped(call_control_id, data.get("occurred_at"))
            elif event_type == "streaming.failed":
                await self._on_stream_failed(call_control_id, payload, data.get("occurred_at"))
            else:
                log.info(
                    "media event",
                    extra={"call_control_id": call_control_id, "event_type": event_type},
                )

    async def _on_answered(self, entry: Entry, call_control_id: str, event_id: str) -> None:
        if self._mode == "off" or call_control_id in self._registry:
            return
        if await self._redis.exists(ENDED_PREFIX + call_control_id):
            log.info(
                "answered after its hang-up: no media started",
                extra={"call_control_id": call_control_id},
            )
            return
        command: ForkStart | StreamingStart = (
            ForkStart(id=event_id, call_control_id=call_control_id)
            if self._mode == "fork"
            else StreamingStart(id=event_id, call_control_id=call_control_id)
        )
        try:
            if isinstance(command, ForkStart):
                await self._commands.fork_start(command, report_exhaustion=False)
            else:
                await self._commands.streaming_start(command)
        except PortsExhausted as exc:
            if await self._spill(entry) is None:
                self._commands.report_exhaustion(call_control_id, exc)
            return
        except Exception as exc:  # noqa: BLE001 - classified below
            kind, detail, _ = classify(exc)
            if kind == "call_ended":
                log.info(
                    "call ended before its media started",
                    extra={"call_control_id": call_control_id},
                )
                return
            if kind in ("network", "rate_limited", "telnyx_error"):
                raise  # left pending: retried by the group after the claim bound
            self._errors(
                call_control_id,
                "call_control",
                f"{command.action} failed: {detail}",
                telnyx_error=kind,
            )

    async def _on_hangup(self, call_control_id: str) -> None:
        await self._redis.set(ENDED_PREFIX + call_control_id, "1", ex=ENDED_TTL)
        call = self._registry.get(call_control_id)
        if call is not None:
            await self._endings.finish(call, "hangup")

    async def _on_fork_stopped(self, call_control_id: str, occurred_at: Any) -> None:
        call = self._registry.get(call_control_id)
        if call is None or not call.fork_active:
            return
        stopped_wall = _wall(occurred_at)
        if (
            stopped_wall is not None
            and stopped_wall < call.fork_started_wall
            or time.time() - call.fork_started_wall < FORK_STOP_GRACE
        ):
            log.info(
                "fork.stopped of a replaced fork ignored",
                extra={"call_control_id": call_control_id},
            )
            return
        await self._commands.stop_fork(call)

    async def _on_stream_failed(
        self, call_control_id: str, payload: dict[str, Any], occurred_at: Any
    ) -> None:
        """Telnyx could not open, or lost, the call's media stream: its token is revoked, the
        failure published, and the call paused (as when a stream stops) until media resumes."""
        call = self._registry.get(call_control_id)
        stream_id = payload.get("stream_id")
        if call is not None and _stale_stream_failure(call, stream_id, _wall(occurred_at)):
            log.info(
                "streaming.failed of a replaced stream ignored",
                extra={"call_control_id": call_control_id, "stream_id": stream_id},
            )
            return
        await self._tokens.revoke(call_control_id)
        self._errors(
            call_control_id,
            "stream_failed",
            f"streaming failed (stream {stream_id}): {payload.get('failure_reason')}",
        )
        if call is not None:
            call.stream_failed()


def _stale_stream_failure(call: Call, stream_id: Any, failed_wall: float | None) -> bool:
    """A failure that is not about the stream feeding (or about to feed) the call now."""
    if call.fork_active:  # a fork replaced the stream: the call's media did not fail
        return True
    if failed_wall is not None and failed_wall < call.stream_started_wall:
        return True  # an attempt before the last streaming_start
    current = call.stream.stream_id if call.stream is not None else None
    return isinstance(stream_id, str) and current is not None and stream_id != current


def _wall(occurred_at: Any) -> float | None:
    if not isinstance(occurred_at, str):
        return None
    try:
        return datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
