"""Pause the call recording while a caller reads out a card number, and resume it afterwards.

A voicetap consumer on the SDK that *sends commands*: it watches live transcripts
(``telnyx.call.transcription``, interim results included, so it reacts within a second) for phrases
that announce card data, publishes a ``fork_stop`` command for the call on
``voicetap.command.media``, and a ``fork_start`` ``--pause-seconds`` later. media_ingest executes
both once and keeps ONE recording per call, the paused interval silent and listed in
``voicetap.recording.completed`` (PCI-DSS: card data never reaches the recording). Outcomes arrive
on ``voicetap.command.result``.

- one pause per call at a time, however many copies run: a ``SET NX`` marker per call;
- one resume per pause: the resume is a sorted-set member that exactly one copy removes;
- command ids derive from the triggering event and are published once (``publish_once``), so a
  redelivered transcription sends nothing new, and media_ingest (and Telnyx, through
  ``command_id``) would de-duplicate a resend anyway;
- partitions (``TOPIC_PARTITIONS``, or ``--partitions``) and Redis Cluster need nothing here.

    pci-pause --pause-seconds 30
"""

import argparse
import functools
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence

from voicetap_sdk import Subscriber, stack_redis_url, topics
from voicetap_sdk.commands import ForkStart, ForkStop
from voicetap_sdk.events import CallTranscriptionEvent

log = logging.getLogger("pci_pause")
PHRASES = ("card number", "credit card", "debit card", "security code", "cvv", "expiry date")
# Keys with the command topic's hash tag: in its slot on Redis Cluster too.
PAUSED, RESUMES = "{voicetap.command.media}:pci:paused:", "{voicetap.command.media}:pci:resumes"


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """Any phrase as whole words, in any case and spacing; the longest first."""
    words = [r"\s+".join(map(re.escape, p.split())) for p in sorted(phrases, key=len)[::-1]]
    if not any(words):
        raise ValueError("no phrases to watch for")
    return re.compile(rf"\b(?:{'|'.join(w for w in words if w)})\b", re.IGNORECASE)


def pause_recordings(sub: Subscriber, pause_seconds: float, phrases: Iterable[str]) -> None:
    """Register the handler and the resume timer (:func:`send_due_resumes`) on ``sub``."""
    pattern = phrase_pattern(phrases)
    sub.every(0.5)(functools.partial(send_due_resumes, sub))

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent) -> None:
        call, redis = event.payload.call_control_id or "", await sub.redis()
        if not pattern.search(event.payload.transcription_data.transcript):
            return
        if not await redis.set(PAUSED + call, event.id, nx=True, ex=int(pause_seconds) + 60):
            return  # already paused (by this or another copy)
        ids = {"call_control_id": call, "correlation_id": f"pci:{event.id}"}  # on both results
        await sub.send_command(ForkStop(id=f"pci-pause:{event.id}", **ids))
        resume = ForkStart(id=f"pci-resume:{event.id}", **ids)
        await redis.zadd(RESUMES, {resume.model_dump_json(): time.time() + pause_seconds})
        log.info("recording paused", extra={"call_control_id": call})


async def send_due_resumes(sub: Subscriber) -> None:
    """Send each resume that fell due; a resume is sent by the one copy that removes it."""
    redis = await sub.redis()
    for member in await redis.zrangebyscore(RESUMES, "-inf", time.time()):
        if await redis.zrem(RESUMES, member):
            resume = ForkStart.model_validate_json(member)
            await sub.send_command(resume)
            await redis.delete(PAUSED + resume.call_control_id)
            log.info("recording resumed", extra={"call_control_id": resume.call_control_id})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default=stack_redis_url(os.environ))
    parser.add_argument("--pause-seconds", type=float, default=30.0)
    parser.add_argument("--phrase", action="append", dest="phrases", help="repeat for more")
    parser.add_argument("--group", default="pci_pause")
    parser.add_argument("--from", dest="start", choices=("beginning", "now"), default="now")
    parser.add_argument("--partitions", type=int, choices=range(1, 4097), metavar="N")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = vars(parse_args(argv))  # --partitions: the stack's TOPIC_PARTITIONS, by default
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    pause_seconds, phrases = options.pop("pause_seconds"), options.pop("phrases") or PHRASES
    sub = Subscriber(options.pop("redis_url"), **options)
    pause_recordings(sub, pause_seconds, phrases)
    sub.run()


if __name__ == "__main__":
    main()
