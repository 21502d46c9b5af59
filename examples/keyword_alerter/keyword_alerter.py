"""Watch live call transcripts for phrases and publish an alert for each final result that says one.

A complete voicetap consumer on the SDK (``voicetap-sdk``): it reads ``telnyx.call.transcription``
through a consumer group of its own and appends alerts to ``voicetap.alerts.keyword`` as plain
fields any client can read. What the SDK's ``Subscriber`` guarantees (docs/CONSUMERS.md):

- at least once, never twice: an entry is acknowledged only after its alert is stored, and the
  alert is keyed by the transcription's event id (``publish_once``: SET NX and XADD in one
  script), so a redelivered or duplicated entry never raises a second alert;
- a consumer that dies holding entries loses nothing: the group claims entries idle for
  ``claim_idle_ms``; an entry that is not a transcription goes to ``<topic>.dlq``;
- partitions (``TOPIC_PARTITIONS``, or ``--partitions``) and Redis Cluster need nothing here: an
  alert names the partition its transcription came from (``source_stream``).

    keyword-alerter --from now --phrase "gift card" --phrase "wire transfer"
"""

import argparse
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence

from voicetap_sdk import Entry, Subscriber, stack_redis_url, topics
from voicetap_sdk.events import CallTranscriptionEvent

log = logging.getLogger("keyword_alerter")
ALERT_TOPIC = "voicetap.alerts.keyword"
ALERT_TYPE = "voicetap.alert.keyword"
DEFAULT_PHRASES = ("gift card", "wire transfer", "social security number")


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any phrase as whole words, whatever the spacing."""
    parts = sorted({" ".join(p.lower().split()) for p in phrases if p.strip()}, key=len)[::-1]
    if not parts:
        raise ValueError("no phrases to watch for")
    alternatives = "|".join(r"\s+".join(map(re.escape, part.split())) for part in parts)
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def find_phrases(pattern: re.Pattern[str], transcript: str) -> list[str]:
    """The phrases said, lower-cased, each once, in the order they were said."""
    return list(dict.fromkeys(" ".join(m[0].lower().split()) for m in pattern.finditer(transcript)))


def watch(sub: Subscriber, phrases: Iterable[str] = DEFAULT_PHRASES) -> None:
    """Register the alerter's handler on ``sub``: an alert for each final result saying a phrase."""
    pattern = phrase_pattern(phrases)

    @sub.on(topics.CALL_TRANSCRIPTION)
    async def on_text(event: CallTranscriptionEvent, entry: Entry) -> None:
        result, call = event.payload.transcription_data, event.payload.call_control_id or ""
        said = find_phrases(pattern, result.transcript)
        if not result.is_final or not said:  # interim results are revised; only finals count
            return
        alert = {"source_id": event.id, "source_topic": entry.topic, "source_entry": entry.entry_id}
        if entry.stream != entry.topic:  # with partitions, the partition it came from
            alert["source_stream"] = entry.stream
        occurred_at = event.occurred_at.isoformat() if event.occurred_at else ""
        alert |= {"call_control_id": call, "track": result.transcription_track or ""}
        alert |= {"occurred_at": occurred_at, "phrases": ",".join(said)}
        alert |= {"transcript": result.transcript}
        event_json = json.dumps({"id": f"{event.id}:keyword", **alert, "phrases": said})
        fields = {"type": ALERT_TYPE, **alert, "event": event_json}
        if await sub.publish_once(ALERT_TOPIC, key=f"{event.id}:keyword", fields=fields):
            log.info("alert: %s said on call %s", alert["phrases"], call)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url", default=stack_redis_url(os.environ), help="the stack's Redis"
    )
    parser.add_argument("--group", default="keyword_alerter", help="consumer group")
    parser.add_argument("--consumer", default="", help="consumer name (default: host and pid)")
    parser.add_argument("--from", dest="start", choices=("beginning", "now"), default="beginning")
    parser.add_argument("--phrase", action="append", dest="phrases", help="a phrase (repeat)")
    parser.add_argument("--partitions", type=int, choices=range(1, 4097), metavar="N")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = vars(parse_args(argv))  # --partitions: the stack's TOPIC_PARTITIONS, by default
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    phrases = options.pop("phrases") or DEFAULT_PHRASES
    sub = Subscriber(options.pop("redis_url"), **options)
    watch(sub, phrases)
    sub.run()


if __name__ == "__main__":
    main()
