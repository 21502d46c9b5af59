"""Pause the call recording while a caller reads out a card number, and resume it afterwards.

A voicetap consumer that *sends commands*: it watches live transcripts (``telnyx.call.transcription``,
interim results included, so it reacts within a second) for phrases that announce card data,
publishes a ``fork_stop`` command for the call on ``voicetap.command.media``, and a ``fork_start``
``--pause-seconds`` later. media_ingest executes both once and keeps ONE recording per call, the
paused interval silent and listed in ``voicetap.recording.completed`` (PCI-DSS: card data never
reaches the recording). Outcomes arrive on ``voicetap.command.result``.

Like the keyword alerter beside it, it needs nothing but Redis and the ``redis`` client:

- one pause per call at a time, however many copies run: a ``SET NX`` marker per call;
- one resume per pause: the resume is a sorted-set member that exactly one copy removes;
- command ids derive from the triggering event, so a redelivered transcription sends nothing new
  and media_ingest (and Telnyx, through ``command_id``) would de-duplicate a resend anyway;
- with ``--partitions N`` above 1 (default: the ``TOPIC_PARTITIONS`` environment variable) it reads
  the transcription topic's N partition streams ``telnyx.call.transcription:p<k>`` together and
  acknowledges each entry on its own; the command topic is never partitioned.

    pci-pause --pause-seconds 30
"""

import argparse
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

log = logging.getLogger("pci_pause")

SOURCE_TOPIC = "telnyx.call.transcription"
COMMAND_TOPIC = "voicetap.command.media"
DEFAULT_GROUP = "pci_pause"
DEFAULT_PHRASES = (
    "card number",
    "credit card",
    "debit card",
    "security code",
    "cvv",
    "expiration date",
    "expiry date",
)
# Keys share the command topic's hash tag, so the scripts below run on Redis Cluster too.
PAUSED = "{voicetap.command.media}:pci:paused:"
RESUMES = "{voicetap.command.media}:pci:resumes"


def topic_streams(topic: str, partitions: int) -> list[str]:
    """The streams of a partitioned ``topic``: the topic itself at 1 partition, else ``<topic>:p0``
    ... ``<topic>:p<N-1>``. voicetap's naming rule (``voicetap_sdk.partitions``), restated so this
    file needs nothing of voicetap; ``telnyx.*`` topics are partitioned, command topics never."""
    if partitions < 1:
        raise ValueError("partitions is 1 or more")
    if partitions == 1:
        return [topic]
    return [f"{topic}:p{k}" for k in range(partitions)]


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    parts = sorted(
        {" ".join(p.split()).lower() for p in phrases if p.strip()}, key=len, reverse=True
    )
    if not parts:
        raise ValueError("no phrases to watch for")
    alternatives = "|".join(r"\s+".join(re.escape(word) for word in part.split()) for part in parts)
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def command_entry(
    command_id: str, action: str, call_control_id: str, correlation_id: str
) -> dict[str, str]:
    """A command as plain stream fields (the contract in voicetap's docs/asyncapi.json)."""
    body = {
        "id": command_id,
        "action": action,
        "call_control_id": call_control_id,
        "correlation_id": correlation_id,
    }
    return {
        "id": command_id,
        "type": action,
        "event": json.dumps(body),
        "call_control_id": call_control_id,
    }


class PciPause:
    def __init__(
        self,
        redis: Redis,
        *,
        phrases: Iterable[str] = DEFAULT_PHRASES,
        pause_seconds: float = 30.0,
        group: str = DEFAULT_GROUP,
        consumer: str = "",
        start: str = "now",
        batch_size: int = 100,
        partitions: int = 1,
    ) -> None:
        self.redis = redis
        self.pattern = phrase_pattern(phrases)
        self.pause_seconds = pause_seconds
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.start = start
        self.batch_size = batch_size
        self.source_streams = topic_streams(
            SOURCE_TOPIC, partitions
        )  # [SOURCE_TOPIC] at 1 partition

    def ensure_group(self) -> None:
        for stream in self.source_streams:
            try:
                self.redis.xgroup_create(
                    stream, self.group, id="0" if self.start == "beginning" else "$", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def run_once(self, block_ms: int = 1000) -> int:
        """Read one batch (own pending entries first), act on it, send due resumes; returns entries read.
        With partitions, one XREADGROUP reads every partition, each entry acknowledged on its own."""
        handled = 0
        for cursor in ("0", ">"):
            streams = dict.fromkeys(self.source_streams, cursor)
            reply = self.redis.xreadgroup(
                self.group,
                self.consumer,
                streams,
                count=self.batch_size,
                block=None if cursor == "0" else block_ms,
            )
            read = 0
            for raw_stream, entries in reply or []:
                stream = raw_stream.decode() if isinstance(raw_stream, bytes) else raw_stream
                for entry_id, fields in entries:
                    if fields:  # a pending entry trimmed away comes back with no fields
                        self.handle(fields)
                    self.redis.xack(stream, self.group, entry_id)
                    read += 1
            handled += read
            if read and cursor == "0":
                break
        self.send_due_resumes()
        return handled

    def handle(self, fields: Mapping[bytes, bytes]) -> None:
        try:
            event = json.loads(fields[b"event"])
            payload = event["data"]["payload"]
            transcript = payload["transcription_data"]["transcript"]
            call = payload["call_control_id"]
            event_id = event["data"]["id"]
        except (KeyError, TypeError, ValueError):
            log.warning("skipping an entry that is not a transcription event")
            return
        if not self.pattern.search(transcript):
            return
        if not self.redis.set(PAUSED + call, event_id, nx=True, ex=int(self.pause_seconds) + 60):
            return  # already paused (by this or another copy)
        self.redis.xadd(
            COMMAND_TOPIC,
            command_entry(f"pci-pause:{event_id}", "fork_stop", call, f"pci:{event_id}"),
        )
        self.redis.zadd(RESUMES, {f"{call}|{event_id}": time.time() + self.pause_seconds})
        log.info("recording paused", extra={"call_control_id": call, "transcript": transcript})

    def send_due_resumes(self) -> None:
        for member in self.redis.zrangebyscore(RESUMES, "-inf", time.time()):
            if not self.redis.zrem(RESUMES, member):
                continue  # another copy took it
            call, event_id = member.decode().split("|", 1)
            self.redis.xadd(
                COMMAND_TOPIC,
                command_entry(f"pci-resume:{event_id}", "fork_start", call, f"pci:{event_id}"),
            )
            self.redis.delete(PAUSED + call)
            log.info("recording resumed", extra={"call_control_id": call})


def partition_count(value: str) -> int:
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: partitions is 1 or more")
    return count


def stack_redis_url(environ: Mapping[str, str]) -> str:
    """Where the stack keeps its topics: ``REDIS_URL`` when set, else the embedded Redis that
    ``voicetap up`` starts (the same rule as the ``voicetap`` command)."""
    port = environ.get("VOICETAP_EMBEDDED_REDIS_PORT") or "6399"
    return environ.get("REDIS_URL") or f"redis://127.0.0.1:{port}/0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url",
        default=stack_redis_url(os.environ),
        help="the stack's Redis (default: REDIS_URL, else the embedded Redis of `voicetap up` on "
        "VOICETAP_EMBEDDED_REDIS_PORT, else 6399)",
    )
    parser.add_argument("--pause-seconds", type=float, default=30.0)
    parser.add_argument(
        "--phrase", action="append", dest="phrases", help="a trigger phrase (repeatable)"
    )
    parser.add_argument("--group", default=DEFAULT_GROUP)
    parser.add_argument("--from", dest="start", choices=("beginning", "now"), default="now")
    parser.add_argument(
        "--partitions",
        type=partition_count,
        default=os.environ.get("TOPIC_PARTITIONS") or "1",
        help="the stack's TOPIC_PARTITIONS: above 1, read the partition streams <topic>:p<k> "
        "(default: the TOPIC_PARTITIONS environment variable, else 1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    redis = Redis.from_url(args.redis_url)
    pauser = PciPause(
        redis,
        phrases=args.phrases or DEFAULT_PHRASES,
        pause_seconds=args.pause_seconds,
        group=args.group,
        start=args.start,
        partitions=args.partitions,
    )
    pauser.ensure_group()
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        pauser.run_once()


if __name__ == "__main__":
    main()
