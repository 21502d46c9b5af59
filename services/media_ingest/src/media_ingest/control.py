"""Call lifecycle and media commands: what this instance starts, stops, records and finishes.

Inputs, all through the ``media_ingest`` consumer group (one instance takes each entry):

- ``telnyx.call.answered``: by ``INGEST_MODE``, allocate a port pair and ``fork_start`` to it, or
  ``streaming_start`` to this instance's WebSocket with a fresh per-call token;
- ``telnyx.call.hangup``: finish the recording, release the ports, publish
  ``voicetap.recording.completed`` once;
- ``telnyx.call.fork.started/stopped``, ``telnyx.streaming.started/stopped/failed``: a fork or stream
  that stopped or failed leaves the call paused (its recording kept, the rest silent and listed as
  paused) until media resumes, the call hangs up, or ``INGEST_PAUSED_TIMEOUT_SECONDS`` pass;
  a ``fork.stopped`` or ``streaming.failed`` about an operation this instance has since replaced
  (Telnyx delivers late and out of order) changes nothing;
- ``voicetap.command.media`` (``fork_start``, ``fork_stop``, ``streaming_start``,
  ``streaming_stop``) through :class:`~voicetap_common.command_runner.CommandRunner`.

Routing between instances
-------------------------
A call's media state (sockets, jitter buffers, the WAV being written) lives in the one process
that set it up. Whoever takes an entry about a call therefore first asks Redis who holds it:

- ``{voicetap.ingest}:call:<call_control_id>`` names the holding instance; it is set when the call
  is set up here and renewed with the port leases (so it vanishes with a dead instance);
- each instance consumes its own inbox stream ``{voicetap.ingest}:inbox:<instance>`` (same group
  name); an entry about a call held elsewhere is appended there, unchanged plus ``source_topic``,
  by a script that first checks the holder is still the same (one hash tag: one slot on Redis
  Cluster), and acknowledged by the forwarder. The holder then handles it as if it had read it.
- An entry about a call nobody holds is handled where it is: a command runs there (a
  ``fork_start`` there makes that instance the holder), a hang-up leaves a tombstone so that a late
  ``call.answered`` does not start media for an ended call.

This keeps at-least-once delivery and claiming from the shared group for every entry (a fan-out
where every instance reads every lifecycle topic would not), costs one GET per entry, and needs no
list of instances. Playback is the exception (see ``playback``): it is tailed by every instance,
because its order matters and only the holder of the WebSocket acts on it.

Ports are leased in Redis (``ports``) and renewed here; on ``PortsExhausted`` the command fails
with a clear result and a ``voicetap.media.error`` (``ports_exhausted``), and the capacity metric
shows why. A Call Control answer that the call has already ended is not an error.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import struct
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from media_ingest.calls import Call, CallRegistry, find_orphans, recovered_recording
from media_ingest.events import EventPublisher, publish_error
from media_ingest.metrics import IngestMetrics
from media_ingest.ports import PortAllocator, PortsExhausted
from media_ingest.settings import IngestSettings
from media_ingest.udp import open_receiver
from media_ingest.wav import repair_wav
from voicetap_common import codec, topics
from voicetap_common.call_control import classify, send
from voicetap_common.command_runner import CommandRunner
from voicetap_common.commands import (
    MEDIA_ACTIONS,
    MEDIA_COMMANDS,
    CallCommand,
    ForkStart,
    ForkStop,
    StreamingStart,
    StreamingStop,
)
from voicetap_common.consumer import Undeliverable
from voicetap_common.media_events import RECORDING_COMPLETED, MediaErrorKind, RecordingCompleted
from voicetap_common.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_common.streams import Entry

log = logging.getLogger("voicetap.media_ingest.control")

GROUP = "media_ingest"
LIFECYCLE_TOPICS = (
    topics.CALL_ANSWERED,
    topics.CALL_HANGUP,
    topics.CALL_FORK_STARTED,
    topics.CALL_FORK_STOPPED,
    topics.STREAMING_STARTED,
    topics.STREAMING_STOPPED,
    topics.STREAMING_FAILED,
)
STREAM_PATH = "/streams/telnyx"

_TAG = "{voicetap.ingest}:"
OWNER_PREFIX = _TAG + "call:"
INBOX_PREFIX = _TAG + "inbox:"
INSTANCE_PREFIX = _TAG + "instance:"
TOKEN_PREFIX = _TAG + "stream-token:"
ENDED_PREFIX = _TAG + "ended:"
REPAIR_PREFIX = _TAG + "repair:"
INBOX_MAXLEN = 100_000
TOKEN_TTL = 86_400
ENDED_TTL = 86_400
# A fork.stopped webhook this soon after this instance (re)started the fork is the old fork's.
FORK_STOP_GRACE = 2.0

# KEYS: the call's holder key, the holder's inbox. ARGV: expected holder, inbox ttl, maxlen, fields.
_FORWARD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*'}
for i = 4, #ARGV do
  args[#args + 1] = ARGV[i]
end
redis.call(unpack(args))
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


def owner_key(call_control_id: str) -> str:
    return OWNER_PREFIX + call_control_id


def inbox(instance: str) -> str:
    return INBOX_PREFIX + instance


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MediaControl:
    def __init__(
        self,
        settings: IngestSettings,
        redis: RedisClient,
        publisher: EventPublisher,
        registry: CallRegistry,
        allocator: PortAllocator,
        client: Any,
        metrics: IngestMetrics,
        instance: str,
    ) -> None:
        self.settings = settings
        self.instance = instance
        self._redis = redis
        self._publisher = publisher
        self.registry = registry
        self.allocator = allocator
        self._client = client
        self._metrics = metrics
        self._forward = redis.register_script(_FORWARD)
        self.runner = CommandRunner(
            redis,
            publisher.producer,
            self.execute,
            executed_by=f"media_ingest:{instance}",
            actions=MEDIA_ACTIONS,
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self.stop_event = asyncio.Event()

    def set_client(self, client: Any) -> None:
        self._client = client

    @property
    def lease(self) -> int:
        return self.settings.ingest_port_lease_seconds

    def _forget_lock(self, call_control_id: str, lock: asyncio.Lock) -> None:
        if (
            call_control_id not in self.registry
            and not lock.locked()
            and self._locks.get(call_control_id) is lock
        ):
            del self._locks[call_control_id]

    def _lock(self, call_control_id: str) -> asyncio.Lock:
        lock = self._locks.get(call_control_id)
        if lock is None:
            lock = self._locks[call_control_id] = asyncio.Lock()
        return lock

    # -- consumer handlers ----------------------------------------------------------------------
    async def handle_lifecycle(self, entries: list[Entry]) -> None:
        for entry in entries:
            call_control_id = _entry_call(entry)
            if call_control_id and await self._route(entry, call_control_id):
                continue
            await self._on_event(entry, call_control_id)

    async def handle_commands(self, entries: list[Entry]) -> None:
        for entry in entries:
            call_control_id = _entry_call(entry)
            if call_control_id and await self._route(entry, call_control_id):
                continue
            await self.runner.handle([entry])

    async def handle_inbox(self, entries: list[Entry]) -> None:
        """Entries other instances forwarded here: handled as read from their own topic, never re-routed."""
        for entry in entries:
            source = entry.fields.get("source_topic", b"").decode()
            original = Entry(source, entry.entry_id, entry.fields)
            if source == MEDIA_COMMANDS:
                await self.runner.handle([original])
            elif source in LIFECYCLE_TOPICS:
                await self._on_event(original, _entry_call(original))
            else:
                raise Undeliverable(f"forwarded entry from unknown topic {source!r}")

    async def _route(self, entry: Entry, call_control_id: str) -> bool:
        """True when another live instance holds the call and the entry went to its inbox."""
        if call_control_id in self.registry:
            return False
        holder = await self._redis.get(owner_key(call_control_id))
        if holder is None:
            return False
        holder_name = holder.decode()
        if holder_name == self.instance:
            return False
        fields: list[bytes | str] = []
        for name, value in entry.fields.items():
            fields += [name, value]
        fields += ["source_topic", entry.topic]
        forwarded = await self._forward(
            keys=[owner_key(call_control_id), inbox(holder_name)],
            args=[holder_name, 3 * self.lease, INBOX_MAXLEN, *fields],
        )
        if forwarded:
            self._metrics.forwarded.labels(entry.topic).inc()
            log.debug(
                "forwarded to the holding instance",
                extra={
                    "call_control_id": call_control_id,
                    "holder": holder_name,
                    "topic": entry.topic,
                },
            )
        return bool(forwarded)

    # -- lifecycle events -------------------------------------------------------------------------
    async def _on_event(self, entry: Entry, call_control_id: str | None) -> None:
        if not call_control_id:
            raise Undeliverable("event without call_control_id")
        event_type = entry.event_type or entry.topic.removeprefix(topics.TELNYX_PREFIX)
        try:
            data = entry.json().get("data", {})
        except (codec.JSONDecodeError, AttributeError) as exc:
            raise Undeliverable(f"event body is not a webhook: {exc}") from None
        payload = data.get("payload") or {}
        lock = self._lock(call_control_id)
        try:
            async with lock:
                if event_type == "call.answered":
                    await self._on_answered(call_control_id, entry.event_id or str(data.get("id")))
                elif event_type == "call.hangup":
                    await self._on_hangup(call_control_id)
                elif event_type == "call.fork.stopped":
                    self._on_fork_stopped(call_control_id, data.get("occurred_at"))
                elif event_type == "streaming.failed":
                    await self._on_stream_failed(call_control_id, payload, data.get("occurred_at"))
                else:
                    log.info(
                        "media event",
                        extra={"call_control_id": call_control_id, "event_type": event_type},
                    )
        finally:
            self._forget_lock(call_control_id, lock)

    async def _on_answered(self, call_control_id: str, event_id: str) -> None:
        mode = self.settings.ingest_mode
        if mode == "off" or call_control_id in self.registry:
            return
        if await self._redis.exists(ENDED_PREFIX + call_control_id):
            log.info(
                "answered after its hang-up: no media started",
                extra={"call_control_id": call_control_id},
            )
            return
        command: CallCommand = (
            ForkStart(id=event_id, call_control_id=call_control_id)
            if mode == "fork"
            else StreamingStart(id=event_id, call_control_id=call_control_id)
        )
        try:
            if isinstance(command, ForkStart):
                await self._fork_start(command)
            else:
                await self._streaming_start(command)
        except PortsExhausted:
            return  # reported by _fork_start
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
            self.error(
                call_control_id,
                "call_control",
                f"{command.action} failed: {detail}",
                telnyx_error=kind,
            )

    async def _on_hangup(self, call_control_id: str) -> None:
        await self._redis.set(ENDED_PREFIX + call_control_id, "1", ex=ENDED_TTL)
        call = self.registry.get(call_control_id)
        if call is not None:
            await self.finish(call, "hangup")

    def _on_fork_stopped(self, call_control_id: str, occurred_at: Any) -> None:
        call = self.registry.get(call_control_id)
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
        self._stop_fork(call)

    async def _on_stream_failed(
        self, call_control_id: str, payload: dict[str, Any], occurred_at: Any
    ) -> None:
        """Telnyx could not open, or lost, the call's media stream: its token is revoked, the
        failure published, and the call paused (as when a stream stops) until media resumes."""
        call = self.registry.get(call_control_id)
        stream_id = payload.get("stream_id")
        if call is not None and self._stale_stream_failure(call, stream_id, _wall(occurred_at)):
            log.info(
                "streaming.failed of a replaced stream ignored",
                extra={"call_control_id": call_control_id, "stream_id": stream_id},
            )
            return
        await self._redis.delete(TOKEN_PREFIX + call_control_id)
        self.error(
            call_control_id,
            "stream_failed",
            f"streaming failed (stream {stream_id}): {payload.get('failure_reason')}",
        )
        if call is None:
            return
        session, call.stream = call.stream, None
        if session is not None:
            session.close()
        call.mark_stopped()

    @staticmethod
    def _stale_stream_failure(call: Call, stream_id: Any, failed_wall: float | None) -> bool:
        """A failure that is not about the stream feeding (or about to feed) the call now."""
        if call.fork_active:  # a fork replaced the stream: the call's media did not fail
            return True
        if failed_wall is not None and failed_wall < call.stream_started_wall:
            return True  # an attempt before the last streaming_start
        current = call.stream.stream_id if call.stream is not None else None
        return isinstance(stream_id, str) and current is not None and stream_id != current

    # -- commands ---------------------------------------------------------------------------------
    async def execute(self, command: CallCommand) -> dict[str, Any] | None:
        """The CommandRunner's executor: send the command, and make local media state follow it."""
        lock = self._lock(command.call_control_id)
        try:
            async with lock:
                return await self._execute(command)
        finally:
            self._forget_lock(command.call_control_id, lock)

    async def _execute(self, command: CallCommand) -> dict[str, Any] | None:
        if isinstance(command, ForkStart):
            return await self._fork_start(command)
        if isinstance(command, StreamingStart):
            return await self._streaming_start(command)
        if isinstance(command, ForkStop):
            await self._send(command)
            call = self.registry.get(command.call_control_id)
            if call is not None:
                self._stop_fork(call)
            return None
        if isinstance(command, StreamingStop):
            await self._send(command)
            call = self.registry.get(command.call_control_id)
            if call is not None and call.stream is not None:
                call.mark_stopped()
            return None
        raise ValueError(f"media_ingest does not execute {command.action}")

    async def _send(self, command: CallCommand, **overrides: Any) -> None:
        if self._client is None:
            raise RuntimeError(
                "TELNYX_API_KEY is not set: media ingest cannot send Call Control commands"
            )
        try:
            await send(self._client, command, **overrides)
        except Exception as exc:
            self._metrics.commands.labels(command.action, classify(exc)[0]).inc()
            raise
        self._metrics.commands.labels(command.action, "ok").inc()

    async def _fork_start(self, command: ForkStart) -> dict[str, Any] | None:
        ccid = command.call_control_id
        call = self.registry.get(ccid)
        if command.rx is not None:  # someone else's targets: the fork no longer comes here
            await self._send(command)
            if call is not None:
                self._stop_fork(call)
            return {"rx": command.rx, "tx": command.tx}
        new = call is None
        allocation = call.allocation if call is not None else None
        fresh = allocation is None
        if allocation is None:
            try:
                allocation = await self.allocator.allocate(ccid)
            except PortsExhausted as exc:
                self._metrics.ports_exhausted.inc()
                self.error(
                    ccid, "ports_exhausted", f"no free UDP port pair on {self.instance}: {exc}"
                )
                raise
        now = time.monotonic()
        try:
            await self._claim(ccid)
            call = self.registry.open(ccid)
            if fresh:
                call.allocation = allocation
                call.receivers = [
                    await open_receiver(call, "inbound", allocation.rx_socket),
                    await open_receiver(call, "outbound", allocation.tx_socket),
                ]
            if call.stopped_at is not None:
                call.recording.pause(call.stopped_at)
                call.resume(now)
            host = self.settings.ingest_public_host
            rx, tx = f"udp:{host}:{allocation.pair.rx}", f"udp:{host}:{allocation.pair.tx}"
            call.fork_started_wall = time.time()
            call.fork_active = True
            call.last_media = now
            call.media.append("fork")
            await self._send(command, rx=rx, tx=tx)
        except BaseException:
            if call is not None and fresh:
                call.retire_receivers()
                call.allocation = None
                call.fork_active = False
                call.mark_stopped(now)
            if fresh:
                await self.allocator.release(allocation)
            if new and call is not None:
                await self.discard(call)
            raise
        if new:
            self._metrics.calls_started.labels("fork").inc()
        if call.stream is not None:  # Telnyx replaces the stream with the fork
            call.stream.replaced()
        log.info("fork started", extra={"call_control_id": ccid, "rx": rx, "tx": tx})
        return {"rx": rx, "tx": tx, "instance": self.instance}

    def _stop_fork(self, call: Call) -> None:
        """The fork stopped (paused, or replaced): ports go back, the recording waits for a resume."""
        call.fork_active = False
        call.retire_receivers()
        if call.allocation is not None:
            allocation, call.allocation = call.allocation, None
            task = asyncio.ensure_future(self.allocator.release(allocation))
            task.add_done_callback(_log_failure)
        if call.stream is None:
            call.mark_stopped()

    async def _streaming_start(self, command: StreamingStart) -> dict[str, Any] | None:
        ccid = command.call_control_id
        if command.stream_url is not None and not command.stream_url.startswith(
            self.settings.ingest_public_url
        ):
            await self._send(command)  # someone else's stream: this instance gets no media any more
            call = self.registry.get(ccid)
            if call is not None:
                self._stop_fork(call)
                call.mark_stopped()
            return {"stream_url": command.stream_url}
        url = command.stream_url or self.settings.ingest_public_url.rstrip("/") + STREAM_PATH
        token = command.stream_auth_token or secrets.token_urlsafe(32)
        overrides: dict[str, Any] = {"stream_url": url, "stream_auth_token": token}
        if command.stream_track is None:
            overrides["stream_track"] = "both_tracks"
        if command.stream_codec is None:
            overrides["stream_codec"] = self.settings.ingest_stream_codec
        mode = self.settings.ingest_stream_bidirectional_mode
        if command.stream_bidirectional_mode is None and mode != "off":
            overrides["stream_bidirectional_mode"] = mode
            if (
                mode == "rtp"
                and command.stream_bidirectional_codec is None
                and self.settings.ingest_stream_codec in ("PCMU", "PCMA")
            ):
                overrides["stream_bidirectional_codec"] = self.settings.ingest_stream_codec
        await self._redis.set(TOKEN_PREFIX + ccid, token_digest(token), ex=TOKEN_TTL)
        await self._claim(ccid)
        new = ccid not in self.registry
        call = self.registry.open(ccid)
        call.stream_started_wall = time.time()
        try:
            await self._send(command, **overrides)
        except BaseException:
            if new:
                await self.discard(call)
            raise
        if new:
            self._metrics.calls_started.labels("stream").inc()
        if (
            call.fork_active or call.allocation is not None
        ):  # Telnyx replaces the fork with the stream
            call.fork_active = False
            call.retire_receivers()
            if call.allocation is not None:
                allocation, call.allocation = call.allocation, None
                await self.allocator.release(allocation)
        call.last_media = time.monotonic()
        log.info("streaming started", extra={"call_control_id": ccid, "stream_url": url})
        return {"stream_url": url, "instance": self.instance}

    # -- streams ------------------------------------------------------------------------------------
    async def check_stream_token(self, call_control_id: str, token: str | None) -> bool:
        """Constant-time check of a presented token against the one issued for the call."""
        stored = await self._redis.get(TOKEN_PREFIX + call_control_id)
        presented = token_digest(token or "")
        expected = stored.decode() if stored is not None else secrets.token_hex(32)
        return hmac.compare_digest(presented, expected) and stored is not None and bool(token)

    async def attach_stream(self, call_control_id: str) -> Call:
        """The call a newly authenticated media stream feeds (created here if it is new)."""
        async with self._lock(call_control_id):
            await self._claim(call_control_id)
            new = call_control_id not in self.registry
            call = self.registry.open(call_control_id)
            if new:
                self._metrics.calls_started.labels("stream").inc()
            now = time.monotonic()
            if call.stopped_at is not None:
                call.recording.pause(call.stopped_at)
                call.resume(now)
            call.last_media = now
            call.media.append("stream")
            return call

    # -- ownership, leases, timeouts ----------------------------------------------------------------
    async def _claim(self, call_control_id: str) -> None:
        await self._redis.set(owner_key(call_control_id), self.instance, ex=self.lease)

    async def heartbeat(self) -> None:
        """Renew this instance's name, its port leases and its calls' holder keys."""
        lost = await self.allocator.renew()
        if lost:
            log.warning(
                "port leases lost (Redis lost them?)", extra={"pairs": [p.rx for p in lost]}
            )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(INSTANCE_PREFIX + self.instance, str(time.time()), ex=self.lease)
            pipe.expire(inbox(self.instance), 3 * self.lease)
            for call in self.registry.calls():
                pipe.set(owner_key(call.call_control_id), self.instance, ex=self.lease)
            await pipe.execute()

    async def expire_idle(self, now: float) -> None:
        media_timeout = self.settings.ingest_media_timeout_seconds
        paused_timeout = self.settings.ingest_paused_timeout_seconds
        for call in self.registry.calls():
            if call.stopped_at is not None:
                if now - call.stopped_at > paused_timeout:
                    await self.finish(call, "paused_timeout")
            elif now - call.last_media > media_timeout:
                await self.finish(call, "media_timeout")

    async def finish(self, call: Call, reason: str) -> RecordingCompleted | None:
        if call.finished:
            return None
        call.retire_receivers()
        if call.allocation is not None:
            allocation, call.allocation = call.allocation, None
            await self.allocator.release(allocation)
        event = self.registry.finish(call, reason)
        if call.stream is not None:
            call.stream.close()
        self._metrics.calls_finished.labels(reason).inc()
        ccid = call.call_control_id
        try:
            await self._redis.delete(owner_key(ccid), TOKEN_PREFIX + ccid)
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "could not drop the call's keys (they expire)",
                extra={"call_control_id": ccid, "error": str(exc)},
            )
        await self._publisher.publish_once(
            RECORDING_COMPLETED,
            event.id,
            RECORDING_COMPLETED,
            event,
            self.stop_event,
            call_control_id=ccid,
        )
        return event

    async def discard(self, call: Call) -> None:
        """Forget a call whose media never started (the command failed): no recording."""
        self.registry.discard(call)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self._redis.delete(owner_key(call.call_control_id))

    async def shutdown(self) -> None:
        """Finish every call (the process is stopping) and give its ports back."""
        for call in self.registry.calls():
            await self.finish(call, "shutdown")
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self._redis.delete(INSTANCE_PREFIX + self.instance, inbox(self.instance))

    # -- recovery -----------------------------------------------------------------------------------
    async def reclaim_own_leases(self) -> int:
        """Leases a previous process of this instance name left: freed at once (it is gone)."""
        return await self.allocator.reclaim(lambda owner: owner.startswith(self.instance + "|"))

    async def recover_orphans(self) -> list[RecordingCompleted]:
        """Repair WAVs left by dead instances (or an earlier life of this one) and announce them."""
        recovered = []
        for orphan in find_orphans(self.settings.voicetap_data_dir):
            if orphan.call_control_id in self.registry:
                continue
            if orphan.instance != self.instance and await self._redis.exists(
                INSTANCE_PREFIX + orphan.instance
            ):
                continue  # its writer is alive
            if not await self._redis.set(
                REPAIR_PREFIX + orphan.call_control_id, self.instance, nx=True, ex=60
            ):
                continue  # another instance sharing the directory is on it
            try:
                frames = repair_wav(orphan.wav)
                rate = _wav_rate(orphan.wav)
            except (OSError, ValueError) as exc:
                log.error(
                    "could not repair an orphaned recording",
                    extra={"path": str(orphan.wav), "error": str(exc)},
                )
                orphan.remove_sidecar()
                continue
            event = recovered_recording(
                orphan, instance=self.instance, frames=frames, sample_rate=rate
            )
            await self._publisher.publish_once(
                RECORDING_COMPLETED,
                event.id,
                RECORDING_COMPLETED,
                event,
                call_control_id=orphan.call_control_id,
            )
            orphan.remove_sidecar()
            log.warning(
                "recovered the recording of a dead instance",
                extra={
                    "call_control_id": orphan.call_control_id,
                    "dead_instance": orphan.instance,
                    "frames": frames,
                },
            )
            recovered.append(event)
        return recovered

    # -- errors -------------------------------------------------------------------------------------
    def error(
        self,
        call_control_id: str | None,
        kind: MediaErrorKind,
        detail: str,
        telnyx_error: str | None = None,
    ) -> None:
        """Log a media failure and publish it on ``voicetap.media.error``."""
        publish_error(
            self._publisher, self.instance, call_control_id, kind, detail, telnyx_error=telnyx_error
        )


def _entry_call(entry: Entry) -> str | None:
    value = entry.fields.get("call_control_id")
    if value:
        return value.decode()
    try:
        body = entry.json()
    except codec.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("call_control_id"), str):  # a command
        return body["call_control_id"]
    payload = (body.get("data") or {}).get("payload") or {}
    value = payload.get("call_control_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def _wall(occurred_at: Any) -> float | None:
    if not isinstance(occurred_at, str):
        return None
    try:
        return datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _wav_rate(path: Path) -> int:
    with open(path, "rb") as file:
        header = file.read(28)
    return struct.unpack_from("<I", header, 24)[0]


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "port release failed (the lease expires)", extra={"error": repr(task.exception())}
        )
