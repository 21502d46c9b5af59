"""Plays one simulated call: its webhooks, and the media and transcripts the stack asks for.

The call rings (``call.initiated``), is answered (``call.answered``, after ``answer_after``
seconds, or when the stack answers through the API), lasts ``duration`` seconds and hangs up
(``call.hangup``). Meanwhile the player consumes the call's effects from the fake API: a fork
sends ``call.fork.started`` and the legs as paced RTP, a stream opens the WebSocket, a
transcription sends the script's lines as ``call.transcription`` events, interim then final,
spread over the call, or each at the end of its turn when the script gives times. A
``CallSpec.transcription`` runs from the answer without any command, as when the application
answers with transcription on. Media starts where the call is at (time since answer), as live
audio does.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from telnyx_simulator import payloads
from telnyx_simulator.audio import CallAudio, Codec, Track
from telnyx_simulator.media_stream import MediaStream
from telnyx_simulator.rtp import FRAME_SECONDS, ForkLeg, RtpFork, strep_header
from telnyx_simulator.script import ScriptLine
from telnyx_simulator.state import Effect, FakeTelnyxState, SimCall
from telnyx_simulator.validation import parse_udp_target
from telnyx_simulator.webhooks import WebhookSender

log = logging.getLogger("voicetap.simulator.player")

# Engines that send ``transcription_track`` (Telnyx's own) and never interim results.
_TELNYX_ENGINES = ("B", "Telnyx")
# How long after the end of a timed script line its final result arrives (engine latency).
FINAL_LATENCY = 0.25
_LEGS: tuple[tuple[Track, str], ...] = (("inbound", "rx"), ("outbound", "tx"))
_TRANSCRIBED: dict[str, tuple[Track, ...]] = {
    "inbound": ("inbound",),
    "outbound": ("outbound",),
    "both": ("inbound", "outbound"),
}


@dataclass(frozen=True)
class CallSpec:
    """What the simulated call is. ``duration`` defaults to the audio's length."""

    from_: str = "+13125550100"
    to: str = "+13125550199"
    direction: Literal["incoming", "outgoing"] = "incoming"
    audio: CallAudio | None = None
    script: Sequence[ScriptLine] = ()
    duration: float | None = None
    answer_after: float | None = 0.1  # None: wait for the stack's ``answer`` command
    codec: Codec = "PCMU"
    client_state: str | None = None
    hangup_source: str = "caller"
    hangup_cause: str = "normal_clearing"
    sip_hangup_cause: str = "200"
    # ``transcription_start`` parameters of a transcription running from the answer, without a
    # command (as when answered with transcription on); None: only when the stack starts one.
    transcription: dict[str, Any] | None = None

    def call_audio(self) -> CallAudio:
        return self.audio if self.audio is not None else CallAudio.tones(self.duration or 5.0)

    def seconds(self) -> float:
        return self.duration if self.duration is not None else self.call_audio().seconds


@dataclass
class CallPlayer:
    state: FakeTelnyxState
    webhooks: WebhookSender
    spec: CallSpec = CallSpec()
    call: SimCall = field(init=False)
    forks: list[RtpFork] = field(default_factory=list, init=False)
    streams: list[MediaStream] = field(default_factory=list, init=False)
    finals: list[ScriptLine] = field(
        default_factory=list, init=False
    )  # lines sent as final results
    _audio: CallAudio = field(init=False, repr=False)
    _start_time: datetime = field(init=False, repr=False)
    _answered_at: float | None = field(default=None, init=False, repr=False)
    _fork_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _stream_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _transcription_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _fork_stream_type: str = field(default="decrypted", init=False, repr=False)
    _timers: list[asyncio.TimerHandle] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.call = self.state.create_call(
            from_=self.spec.from_,
            to=self.spec.to,
            direction=self.spec.direction,
            client_state=self.spec.client_state,
        )
        self._audio = self.spec.call_audio()

    async def run(self) -> None:
        """Play the call to its hang-up, then wait for its webhooks to be delivered."""
        loop = asyncio.get_running_loop()
        self._start_time = datetime.now(UTC)
        self.webhooks.send("call.initiated", payloads.call_initiated(self.call, self._start_time))
        if self.spec.answer_after is not None:
            self._timers.append(
                loop.call_later(
                    self.spec.answer_after, self.state.answer_call, self.call.call_control_id
                )
            )
        try:
            while True:
                effect = await self.call.effects.get()
                if effect.action == "hangup":
                    await self._hangup(effect)
                    break
                await self._apply(effect)
        finally:
            for timer in self._timers:
                timer.cancel()
            await self._stop_media()
            await self._stop_transcription()
        await self.webhooks.drain()

    # -- effects -------------------------------------------------------------------------------------
    async def _apply(self, effect: Effect) -> None:
        action, params = effect.action, effect.params
        if action == "answer":
            self._answer()
        elif action == "fork_start":
            await self._stop_media()
            self._start_fork(params)
        elif action == "fork_stop" and self._fork_task is not None:
            await self._stop_media()
        elif action == "streaming_start":
            await self._stop_media()
            self._start_stream(params)
        elif action == "streaming_stop" and self._stream_task is not None:
            await self._stop_media()
        elif action == "transcription_start":
            await self._stop_transcription()
            self._transcription_task = asyncio.create_task(self._transcribe(params))
        elif action == "transcription_stop":
            await self._stop_transcription()

    def _answer(self) -> None:
        if self._answered_at is not None:
            return
        loop = asyncio.get_running_loop()
        self._answered_at = loop.time()
        self.webhooks.send("call.answered", payloads.call_answered(self.call, self._start_time))
        self._timers.append(
            loop.call_later(
                self.spec.seconds(),
                lambda: self.state.end_call(
                    self.call.call_control_id,
                    hangup_source=self.spec.hangup_source,
                    hangup_cause=self.spec.hangup_cause,
                ),
            )
        )
        if self.spec.transcription is not None and self._transcription_task is None:
            self.call.transcription = dict(self.spec.transcription)
            self._transcription_task = asyncio.create_task(
                self._transcribe(self.call.transcription)
            )

    async def _hangup(self, effect: Effect) -> None:
        await self._stop_media()
        await self._stop_transcription()
        api = effect.origin == "api"
        answered = 0 if self._answered_at is None else self._media_frame()
        packets = {"inbound": answered, "outbound": answered}
        self.webhooks.send(
            "call.hangup",
            payloads.call_hangup(
                self.call,
                self._start_time,
                hangup_cause="normal_clearing" if api else str(effect.params.get("hangup_cause")),
                hangup_source="callee" if api else str(effect.params.get("hangup_source")),
                sip_hangup_cause=self.spec.sip_hangup_cause,
                packets=packets,
            ),
        )

    # -- media ---------------------------------------------------------------------------------------
    def _media_frame(self) -> int:
        """Where the call's audio is now: 20 ms frames since the answer."""
        if self._answered_at is None:
            return 0
        return int((asyncio.get_running_loop().time() - self._answered_at) / FRAME_SECONDS)

    def _start_fork(self, params: dict[str, Any]) -> None:
        legs: list[ForkLeg] = []
        if params.get("rx"):
            for track, target in _LEGS:
                host, port = _target(params[target])
                legs.append(ForkLeg(track, host, port))
        else:  # the legacy single target: both legs there, behind STREP headers
            host, port = _target(params["target"])
            for track, _ in _LEGS:
                prefix = strep_header(
                    self.call.call_leg_id, b_leg=False, transmitted=track == "outbound"
                )
                legs.append(ForkLeg(track, host, port, prefix))
        fork = RtpFork(self._audio, legs, self.spec.codec, self._media_frame())
        self.forks.append(fork)
        stream_type = str(params.get("stream_type") or "decrypted")
        self.webhooks.send("call.fork.started", payloads.fork(self.call, stream_type))
        self._fork_task = asyncio.create_task(fork.run())
        self._fork_stream_type = stream_type

    def _start_stream(self, params: dict[str, Any]) -> None:
        stream = MediaStream(
            self.call, params, self._audio, self.webhooks, self.spec.codec, self._media_frame()
        )
        self.streams.append(stream)
        self._stream_task = asyncio.create_task(stream.run())

    async def _stop_media(self) -> None:
        if self._fork_task is not None:
            task, self._fork_task = self._fork_task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.webhooks.send(
                "call.fork.stopped", payloads.fork(self.call, self._fork_stream_type)
            )
        if self._stream_task is not None:
            task, self._stream_task = self._stream_task, None
            self.streams[-1].stop()
            await task

    # -- transcription -------------------------------------------------------------------------------
    async def _stop_transcription(self) -> None:
        if self._transcription_task is not None:
            task, self._transcription_task = self._transcription_task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _transcribe(self, params: dict[str, Any]) -> None:
        """The script's lines over the call, each final once its turn ends and an interim half-way.

        A timed line ends at its ``end`` (plus ``FINAL_LATENCY``); an untimed line i ends at 90 %
        of the i-th equal slot of the call.
        """
        loop = asyncio.get_running_loop()
        engine = params.get("transcription_engine") or "Google"
        telnyx_engine = engine in _TELNYX_ENGINES
        config = params.get("transcription_engine_config") or {}
        interim = bool(config.get("interim_results")) and not telnyx_engine
        tracks = _TRANSCRIBED[params.get("transcription_tracks") or "inbound"]
        script = self.spec.script
        base = self._answered_at if self._answered_at is not None else loop.time()
        slot = self.spec.seconds() / max(len(script), 1)
        started = loop.time()
        for index, line in enumerate(script):
            words = line.text.split()
            if line.start is not None:
                end = line.end if line.end is not None else line.start + max(1.0, 0.35 * len(words))
                final_at = base + end + FINAL_LATENCY
                interim_at = base + (line.start + end) / 2
            else:
                final_at = base + (index + 0.9) * slot
                interim_at = base + (index + 0.5) * slot
            if line.track not in tracks or final_at <= started:
                continue
            track = line.track if telnyx_engine else None
            if interim and len(words) > 1 and interim_at > loop.time():
                await asyncio.sleep(interim_at - loop.time())
                partial = " ".join(words[: len(words) // 2])
                self._send_transcript(partial, is_final=False, confidence=None, track=track)
            await asyncio.sleep(max(final_at - loop.time(), 0.0))
            self._send_transcript(line.text, is_final=True, confidence=0.93, track=track)
            self.finals.append(line)

    def _send_transcript(
        self, text: str, *, is_final: bool, confidence: float | None, track: str | None
    ) -> None:
        payload = payloads.transcription(
            self.call, text, is_final=is_final, confidence=confidence, track=track
        )
        self.webhooks.send("call.transcription", payload)


def _target(value: str) -> tuple[str, int]:
    parsed = parse_udp_target(value)
    if parsed is None:  # the fake API accepts only valid targets
        raise ValueError(f"not a udp:HOST:PORT target: {value!r}")
    return parsed
