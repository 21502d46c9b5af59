"""The media commands this instance executes (``voicetap.command.media`` through
:class:`~voicetap_common.command_runner.CommandRunner`, and ``call.answered`` by ``INGEST_MODE``):
``fork_start``, ``fork_stop``, ``streaming_start``, ``streaming_stop``. Each sends the command and
makes the call's local media state follow it.

Ports are leased in Redis (``ports``); on ``PortsExhausted`` the command fails with a clear result
and a ``voicetap.media.error`` (``ports_exhausted``), and the capacity metric shows why.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from media_ingest.call_control import CallControl
from media_ingest.calls.call import Call
from media_ingest.calls.registry import CallRegistry
from media_ingest.endings import CallEndings
from media_ingest.events import ErrorReporter
from media_ingest.keys import STREAM_PATH
from media_ingest.locks import CallLocks
from media_ingest.metrics import IngestMetrics
from media_ingest.ownership import Ownership
from media_ingest.ports import Allocation, PortAllocator, PortPair, PortsExhausted
from media_ingest.tokens import StreamTokens, new_token, token_digest
from media_ingest.transports.udp import open_receiver
from voicetap_sdk.commands import CallCommand, ForkStart, ForkStop, StreamingStart, StreamingStop

log = logging.getLogger("voicetap.media_ingest.commands")


@dataclass(frozen=True)
class MediaTargets:
    """Where Telnyx sends this instance's media, and what it asks for."""

    public_host: str  # INGEST_PUBLIC_HOST: of the udp:HOST:PORT fork targets
    public_url: str  # INGEST_PUBLIC_URL: the ws(s):// base of stream_url
    stream_codec: str  # INGEST_STREAM_CODEC
    bidirectional_mode: str  # INGEST_STREAM_BIDIRECTIONAL_MODE ("off": none asked)


class MediaCommands:
    def __init__(
        self,
        call_control: CallControl,
        registry: CallRegistry,
        allocator: PortAllocator,
        ownership: Ownership,
        tokens: StreamTokens,
        endings: CallEndings,
        locks: CallLocks,
        errors: ErrorReporter,
        metrics: IngestMetrics,
        targets: MediaTargets,
    ) -> None:
        self._call_control = call_control
        self._registry = registry
        self._allocator = allocator
        self._ownership = ownership
        self._tokens = tokens
        self._endings = endings
        self._locks = locks
        self._errors = errors
        self._metrics = metrics
        self._targets = targets

    async def execute(self, command: CallCommand) -> dict[str, Any] | None:
        """The CommandRunner's executor: send the command, and make local media state follow it."""
        async with self._locks.hold(command.call_control_id):
            if isinstance(command, ForkStart):
                return await self.fork_start(command)
            if isinstance(command, StreamingStart):
                return await self.streaming_start(command)
            if isinstance(command, ForkStop):
                await self._call_control.send(command)
                call = self._registry.get(command.call_control_id)
                if call is not None:
                    await self.stop_fork(call)
                return None
            if isinstance(command, StreamingStop):
                await self._call_control.send(command)
                call = self._registry.get(command.call_control_id)
                if call is not None and call.stream is not None:
                    call.pause()
                    await self._ownership.note(call)
                return None
            raise ValueError(f"media_ingest does not execute {command.action}")

    async def send_only(self, command: CallCommand) -> None:
        """Send a command that changes nothing here (a dead holder's fork stopped)."""
        await self._call_control.send(command)

    async def fork_start(
        self, command: ForkStart, *, report_exhaustion: bool = True
    ) -> dict[str, Any] | None:
        """Fork to this instance's port pair (allocated unless the call has one), or, with
        someone else's targets, send it and stop taking the call's fork here. Caller holds the
        lock. ``report_exhaustion``: a ``ports_exhausted`` error event when no pair is free (the
        caller that hands the call to another instance instead reports it only if that fails)."""
        ccid = command.call_control_id
        call = self._registry.get(ccid)
        if command.rx is not None:  # someone else's targets: the fork no longer comes here
            await self._call_control.send(command)
            if call is not None:
                await self.stop_fork(call)
            return {"rx": command.rx, "tx": command.tx}
        new = call is None
        allocation = call.allocation if call is not None else None
        fresh = allocation is None
        if allocation is None:
            allocation = await self._allocate(ccid, report_exhaustion)
        now = time.monotonic()
        host = self._targets.public_host
        rx, tx = f"udp:{host}:{allocation.pair.rx}", f"udp:{host}:{allocation.pair.tx}"
        try:
            await self._ownership.claim(ccid)
            call = self._registry.open(ccid)
            ports = None
            if fresh:
                receivers = [
                    await open_receiver(call.recording, call.touch, "inbound", allocation.rx_socket, ccid),
                    await open_receiver(call.recording, call.touch, "outbound", allocation.tx_socket, ccid),
                ]  # fmt: skip
                ports = (allocation, receivers)
            call.attach_fork(now, ports=ports)
            # Telnyx de-duplicates a command_id: a re-execution (after a crash) to other ports
            # must not be taken for the first one
            sent_id = f"{command.telnyx_command_id()}:{allocation.pair.rx}"
            await self._call_control.send(command, rx=rx, tx=tx, command_id=sent_id)
        except BaseException:
            if call is not None and fresh:
                call.detach_fork()
                call.pause(now)
            if fresh:
                await self._allocator.release(allocation)
            if new and call is not None:
                await self._endings.discard(call)
            raise
        if new:
            self._metrics.calls_started.labels("fork").inc()
        if call.stream is not None:  # Telnyx replaces the stream with the fork
            call.stream.replaced()
        await self._ownership.note(call)
        log.info("fork started", extra={"call_control_id": ccid, "rx": rx, "tx": tx})
        return {
            "rx": rx,
            "tx": tx,
            "instance": self._ownership.instance,
            "telnyx_command_id": sent_id,
        }

    async def resume_fork(self, call: Call, pair: PortPair | None, command_id: str) -> None:
        """The fork of a call picked up again (restart in place): its leased ports bound again,
        where Telnyx still sends; or, when they cannot be, new ones and a ``fork_start`` to them
        (``command_id``: the same for every instance that might send it). Caller holds the lock."""
        ccid = call.call_control_id
        allocation = await self._allocator.adopt(pair, ccid) if pair is not None else None
        if allocation is None:
            await self.fork_start(ForkStart(id=command_id, call_control_id=ccid))
            return
        receivers = [
            await open_receiver(call.recording, call.touch, "inbound", allocation.rx_socket, ccid),
            await open_receiver(call.recording, call.touch, "outbound", allocation.tx_socket, ccid),
        ]
        call.attach_fork(time.monotonic(), ports=(allocation, receivers))
        log.info(
            "fork picked up again",
            extra={"call_control_id": ccid, "rx": pair.rx if pair else None},
        )

    async def _allocate(self, call_control_id: str, report: bool = True) -> Allocation:
        try:
            return await self._allocator.allocate(call_control_id)
        except PortsExhausted as exc:
            self._metrics.ports_exhausted.inc()
            if report:
                self.report_exhaustion(call_control_id, exc)
            raise

    def report_exhaustion(self, call_control_id: str, exc: PortsExhausted) -> None:
        self._errors(
            call_control_id,
            "ports_exhausted",
            f"no free UDP port pair on {self._ownership.instance}: {exc}",
        )

    async def stop_fork(self, call: Call) -> None:
        """The fork stopped (paused, or replaced): ports go back, the recording waits for a resume."""
        allocation = call.detach_fork()
        if call.stream is None:
            call.pause()
        await self._endings.release(allocation)
        await self._ownership.note(call)

    async def streaming_start(self, command: StreamingStart) -> dict[str, Any] | None:
        """Stream to this instance's WebSocket with a fresh per-call token, or, with someone else's
        stream_url, send it and stop taking the call's media here. Caller holds the lock."""
        ccid = command.call_control_id
        targets = self._targets
        if command.stream_url is not None and not command.stream_url.startswith(targets.public_url):
            await self._call_control.send(command)  # someone else's stream: no media here any more
            call = self._registry.get(ccid)
            if call is not None:
                await self.stop_fork(call)
                call.pause()
            return {"stream_url": command.stream_url}
        url = command.stream_url or targets.public_url.rstrip("/") + STREAM_PATH
        token = command.stream_auth_token or new_token()
        overrides = self._stream_overrides(command, url, token)
        await self._tokens.issue(ccid, token)
        await self._ownership.claim(ccid)
        new = ccid not in self._registry
        call = self._registry.open(ccid)
        call.stream_started_wall = time.time()
        try:
            await self._call_control.send(command, **overrides)
        except BaseException:
            if new:
                await self._endings.discard(call)
            raise
        if new:
            self._metrics.calls_started.labels("stream").inc()
        if call.fork_active or call.allocation is not None:  # Telnyx replaces the fork
            allocation = call.detach_fork()
            if allocation is not None:
                await self._allocator.release(allocation)
        call.touch(time.monotonic())
        await self._ownership.note(call)
        log.info("streaming started", extra={"call_control_id": ccid, "stream_url": url})
        return {
            "stream_url": url,
            "instance": self._ownership.instance,
            "telnyx_command_id": overrides["command_id"],
        }

    def _stream_overrides(self, command: StreamingStart, url: str, token: str) -> dict[str, Any]:
        targets = self._targets
        overrides: dict[str, Any] = {
            "stream_url": url,
            "stream_auth_token": token,
            # a re-execution (after a crash) comes with a new token: not the same request to Telnyx
            "command_id": f"{command.telnyx_command_id()}:{token_digest(token)[:12]}",
        }
        if command.stream_track is None:
            overrides["stream_track"] = "both_tracks"
        if command.stream_codec is None:
            overrides["stream_codec"] = targets.stream_codec
        mode = targets.bidirectional_mode
        if command.stream_bidirectional_mode is None and mode != "off":
            overrides["stream_bidirectional_mode"] = mode
            if (
                mode == "rtp"
                and command.stream_bidirectional_codec is None
                and targets.stream_codec in ("PCMU", "PCMA")
            ):
                overrides["stream_bidirectional_codec"] = targets.stream_codec
        return overrides
