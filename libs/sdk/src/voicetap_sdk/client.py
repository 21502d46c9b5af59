"""Acting on calls from any program: commands and their outcomes, audio into streamed calls.

``await client.command(ForkStop(call_control_id=...))`` publishes the command on its topic (once:
keyed by the command's id) and waits for its outcome on ``voicetap.command.result``, a
:class:`~voicetap_sdk.commands.CommandResult` whose ``ok`` is True, or False with ``error`` (one of
``ErrorKind``: ``unknown_call``, ``call_ended``, ``invalid_parameters``, ``malformed``, ...) and
Telnyx's own detail. Sent again (same id), a command is not executed twice: the result already
published is returned.

``play``, ``clear`` and ``mark`` write ``voicetap.media.playback``, which the media_ingest
instance holding the call's media stream sends into the call.
"""

import base64
import time
from collections.abc import Sequence
from typing import cast, get_args

from voicetap_sdk import codec
from voicetap_sdk.commands import BidirectionalSamplingRate, CallCommand, CommandResult, topic_for
from voicetap_sdk.connection import Connection
from voicetap_sdk.media_events import PlaybackRequest
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Fields, Producer
from voicetap_sdk.topics import COMMAND_RESULTS, MEDIA_PLAYBACK, dedupe_key, is_internal

COMMAND_WINDOW_SECONDS = 7 * 86_400
PLAYBACK_CHUNK_SECONDS = 10  # a playback message carries 20 ms to 30 s of audio
SAMPLE_RATES: tuple[int, ...] = get_args(BidirectionalSamplingRate)


class NoOutcome(TimeoutError):
    """No result within the time given: the service executing that action may not be running."""


class Client:
    def __init__(
        self,
        redis_url: str,
        *,
        cluster: bool | None = None,
        partitions: int | None = None,
        maxlen: int | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        """As :class:`~voicetap_sdk.Subscriber`: ``cluster`` None asks the server, ``partitions``
        None reads ``TOPIC_PARTITIONS``, ``maxlen`` None reads ``TOPIC_MAXLEN``."""
        self._connection = Connection(
            redis_url,
            cluster=cluster,
            partitions=partitions,
            maxlen=maxlen,
            timeout_seconds=timeout_seconds,
            blocking_ms=1000,
        )

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._connection.close()

    async def send(self, command: CallCommand) -> bool:
        """Publish ``command`` on its topic without waiting; False when its id was sent already."""
        return await publish_command(await self._connection.producer(), command) is not None

    async def command(self, command: CallCommand, timeout: float = 30.0) -> CommandResult:
        """Send ``command`` and return its outcome; raises :class:`NoOutcome` after ``timeout``."""
        redis = await self._connection.client()
        newest = cast("list[tuple[bytes, object]]", await redis.xrevrange(COMMAND_RESULTS, count=1))
        cursor = newest[0][0].decode() if newest else "0-0"
        await self.send(command)
        result_id = f"result:{command.id}"
        answered = await redis.get(dedupe_key(COMMAND_RESULTS, result_id))
        if answered is not None:  # sent before, and answered: that outcome is this one
            cursor = _before(answered.decode() if isinstance(answered, bytes) else str(answered))
        found = await _wait_for(redis, result_id, cursor, timeout)
        if found is None:
            raise NoOutcome(
                f"no outcome for {command.action} {command.id} within {timeout:.0f} s: is the "
                "service that executes it (media_ingest or transcript_indexer) running?"
            )
        return found

    async def play(
        self, call_control_id: str, pcm16: bytes, rate: int, *, mark: str | None = None
    ) -> None:
        """Play ``pcm16`` (signed 16-bit little-endian mono samples at ``rate`` Hz) into the
        call's media stream, then echo ``mark`` (``voicetap.media.mark``) once it has played.

        The stream must have been started bidirectional in ``rtp`` mode with codec ``L16`` at
        this rate (``StreamingStart(stream_bidirectional_mode="rtp",
        stream_bidirectional_codec="L16", stream_bidirectional_sampling_rate=rate)``)."""
        if rate not in SAMPLE_RATES:
            raise ValueError(f"rate={rate}: a bidirectional stream plays at one of {SAMPLE_RATES}")
        if len(pcm16) % 2:
            raise ValueError("pcm16 holds 16-bit samples: an even number of bytes")
        audio = _to_l16(pcm16)
        step = rate * 2 * PLAYBACK_CHUNK_SECONDS
        chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            await self._playback(
                PlaybackRequest(
                    call_control_id=call_control_id,
                    payload=base64.b64encode(chunk).decode(),
                    mark=mark if last else None,
                )
            )

    async def clear(self, call_control_id: str) -> None:
        """Drop the audio Telnyx has queued for the call (barge-in)."""
        await self._playback(PlaybackRequest(call_control_id=call_control_id, clear=True))

    async def mark(self, call_control_id: str, name: str) -> None:
        """Have ``name`` echoed on ``voicetap.media.mark`` once the audio sent before it played."""
        await self._playback(PlaybackRequest(call_control_id=call_control_id, mark=name))

    async def topics(self) -> list[str]:
        """Every topic that exists (partitions and dead-letter topics by their own names), sorted;
        voicetap's internal keys left out."""
        redis = await self._connection.client()
        found: set[str] = set()
        async for key in redis.scan_iter(_type="stream", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if not is_internal(name):
                found.add(name)
        return sorted(found)

    async def _playback(self, request: PlaybackRequest) -> None:
        producer = await self._connection.producer()
        body = codec.dumps(request.model_dump(mode="json", exclude_none=True))
        fields: Fields = {"type": MEDIA_PLAYBACK, "event": body}
        fields["call_control_id"] = request.call_control_id or ""
        await producer.publish_raw(MEDIA_PLAYBACK, fields)


async def publish_command(producer: Producer, command: CallCommand) -> str | None:
    """Publish ``command`` on its topic, once (keyed by its id): the entry id, or None when it
    was published already. The entry format is the contract media_ingest and the indexer read."""
    body = codec.dumps(command.model_dump(mode="json", exclude_none=True))
    fields: Fields = {"id": command.id, "type": command.action, "event": body}
    fields["call_control_id"] = command.call_control_id
    return await producer.publish_fields_once(
        topic_for(command.action), command.id, fields, COMMAND_WINDOW_SECONDS
    )


async def _wait_for(
    redis: RedisClient, result_id: str, cursor: str, timeout: float
) -> CommandResult | None:
    deadline = time.monotonic() + timeout
    wanted = result_id.encode()
    while (remaining := deadline - time.monotonic()) > 0:
        reply = cast(  # the client never decodes (bytes); None on time-out
            "Sequence[tuple[bytes, Sequence[tuple[bytes, dict[bytes, bytes]]]]] | None",
            await redis.xread(
                {COMMAND_RESULTS: cursor}, count=100, block=max(int(min(remaining, 1.0) * 1000), 1)
            ),
        )
        for _, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id.decode()
                if fields.get(b"id") == wanted:
                    return CommandResult.model_validate_json(fields[b"event"])
    return None


def _before(entry_id: str) -> str:
    """The id just before ``entry_id``, to read from it inclusively with XREAD."""
    millis, sequence = (int(part) for part in entry_id.split("-"))
    return f"{millis}-{sequence - 1}" if sequence else f"{millis - 1}-{2**64 - 1}"


def _to_l16(pcm16: bytes) -> bytes:
    """Little-endian samples in L16's network byte order (RFC 3551): each byte pair swapped."""
    swapped = bytearray(len(pcm16))
    swapped[0::2], swapped[1::2] = pcm16[1::2], pcm16[0::2]
    return bytes(swapped)
