"""Watch live call transcripts for phrases and publish an alert for each final result that says one.

A complete voicetap consumer that needs nothing but Redis and the `redis` client: it reads the
topic ``telnyx.call.transcription`` through a consumer group of its own, and appends alerts to the
topic ``voicetap.alerts.keyword`` as plain fields any client can read.

- At least once, never twice: an entry is acknowledged only after its alert is stored, and the
  alert is keyed by the transcription's event id (``SET NX`` and ``XADD`` in one script), so a
  redelivered or duplicated entry never raises a second alert.
- A consumer that dies holding entries loses nothing: any consumer of the group claims entries
  idle for ``--claim-idle-ms`` (``XAUTOCLAIM``).
- With ``--partitions N`` above 1 (default: the ``TOPIC_PARTITIONS`` environment variable, as the
  stack reads it), the topic is its N partition streams ``telnyx.call.transcription:p<k>``: the
  group is created on each, one XREADGROUP reads them all, and each entry is acknowledged (or
  claimed) on the stream it came from. The alert topic is never partitioned.

    keyword-alerter --from now --phrase "gift card" --phrase "wire transfer"
    keyword-alerter --partitions 4    # a stack running with TOPIC_PARTITIONS=4
"""

import argparse
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

log = logging.getLogger("keyword_alerter")

SOURCE_TOPIC = "telnyx.call.transcription"
ALERT_TOPIC = "voicetap.alerts.keyword"
ALERT_TYPE = "voicetap.alert.keyword"
DEFAULT_GROUP = "keyword_alerter"
DEFAULT_PHRASES = ("gift card", "wire transfer", "social security number")

# KEYS[1] the alert topic, KEYS[2] the marker of this source event (same hash slot as the topic,
# so it also runs on Redis Cluster); ARGV: marker TTL, topic bound, then the alert's fields.
_PUBLISH_ONCE = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""


def topic_streams(topic: str, partitions: int) -> list[str]:
    """The streams that hold a partitioned ``topic``'s entries: the topic itself at 1 partition,
    else ``<topic>:p0`` ... ``<topic>:p<N-1>``.

    voicetap's naming rule (``voicetap_sdk.partitions``), restated so this file needs nothing of
    voicetap: a call's events are on partition ``zlib.crc32(call_control_id.encode()) % N``, and
    every ``telnyx.*`` topic is partitioned (dead letters and command topics never are)."""
    if partitions < 1:
        raise ValueError("partitions is 1 or more")
    if partitions == 1:
        return [topic]
    return [f"{topic}:p{k}" for k in range(partitions)]


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any phrase as whole words, whatever the spacing."""
    parts = sorted(
        {" ".join(p.split()).lower() for p in phrases if p.strip()}, key=len, reverse=True
    )
    if not parts:
        raise ValueError("no phrases to watch for")
    alternatives = "|".join(r"\s+".join(re.escape(word) for word in part.split()) for part in parts)
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def find_phrases(pattern: re.Pattern[str], transcript: str) -> list[str]:
    """The phrases said, lower-cased, each once, in the order they were said."""
    return list(
        dict.fromkeys(" ".join(m.group(0).lower().split()) for m in pattern.finditer(transcript))
    )


class KeywordAlerter:
    def __init__(
        self,
        redis: Redis,
        phrases: Sequence[str] = DEFAULT_PHRASES,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str = "",
        start: str = "beginning",
        source_topic: str = SOURCE_TOPIC,
        alert_topic: str = ALERT_TOPIC,
        alert_maxlen: int = 100_000,
        dedupe_seconds: int = 7 * 86_400,
        batch_size: int = 100,
        claim_idle_ms: int = 60_000,
        partitions: int = 1,
    ) -> None:
        if start not in ("beginning", "now"):
            raise ValueError("start is 'beginning' or 'now'")
        self.redis = redis
        self.pattern = phrase_pattern(phrases)
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.start = start
        self.source_topic = source_topic
        self.source_streams = topic_streams(
            source_topic, partitions
        )  # [source_topic] at 1 partition
        self.alert_topic = alert_topic
        self.alert_maxlen = alert_maxlen
        self.dedupe_seconds = dedupe_seconds
        self.batch_size = batch_size
        self.claim_idle_ms = claim_idle_ms
        self._publish_once = redis.register_script(_PUBLISH_ONCE)

    def ensure_group(self) -> None:
        """Create the group (on every partition): at ``0`` it reads every entry still in the topic, at ``$`` only new ones."""
        for stream in self.source_streams:
            try:
                self.redis.xgroup_create(
                    stream, self.group, id="0" if self.start == "beginning" else "$", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # the group exists: keep its position
                    raise

    def alert_for(
        self, entry_id: str, fields: Mapping[bytes, bytes], stream: str | None = None
    ) -> dict[str, str] | None:
        """The alert an entry raises, or None (interim result, no phrase, or not a transcription).
        ``stream``: the partition the entry was read from, if any (the alert names it)."""
        try:
            event = json.loads(fields[b"event"])
            data = event["data"]
            payload = data["payload"]
            result = payload["transcription_data"]
            transcript = result["transcript"]
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "skipping an entry that is not a transcription: %r", exc, extra={"entry": entry_id}
            )
            return None
        if not isinstance(transcript, str) or result.get("is_final", True) is False:
            return (
                None  # interim results are revised; only finals count (a missing flag means final)
            )
        said = find_phrases(self.pattern, transcript)
        if not said:
            return None
        source_id = fields.get(b"id", b"").decode() or str(data.get("id", ""))
        alert = {
            "id": f"{source_id}:keyword",
            "source_id": source_id,
            "source_topic": self.source_topic,
            "source_entry": entry_id,
            **({"source_stream": stream} if stream and stream != self.source_topic else {}),
            "call_control_id": str(payload.get("call_control_id") or ""),
            "track": str(result.get("transcription_track") or ""),
            "occurred_at": str(data.get("occurred_at") or ""),
            "phrases": ",".join(said),
            "transcript": transcript,
        }
        return {
            "type": ALERT_TYPE,
            **alert,
            "event": json.dumps({**alert, "phrases": said}, ensure_ascii=False),
        }

    def publish(self, alert: Mapping[str, str]) -> bool:
        """Append the alert unless this source event already raised one; True when appended."""
        marker = "{" + self.alert_topic + "}:alerted:" + alert["source_id"]
        flat = [item for pair in alert.items() for item in pair]
        return (
            self._publish_once(
                keys=[self.alert_topic, marker],
                args=[self.dedupe_seconds, self.alert_maxlen, *flat],
            )
            is not None
        )

    def handle(
        self,
        entries: Iterable[tuple[bytes | str, Mapping[bytes, bytes] | None]],
        stream: str | None = None,
    ) -> int:
        """Alert on each entry, then acknowledge them all on ``stream``, the one they were read from
        (default: the source topic, the only one without partitions); returns the alerts appended."""
        stream = stream or self.source_topic
        appended = 0
        ids: list[str] = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            ids.append(entry_id)
            if fields is None:  # trimmed from the topic while pending: nothing left to do
                continue
            alert = self.alert_for(entry_id, fields, stream)
            if alert is not None and self.publish(alert):
                appended += 1
                log.info("alert: %s said on call %s", alert["phrases"], alert["call_control_id"])
        if ids:
            self.redis.xack(stream, self.group, *ids)
        return appended

    def claim_idle(self) -> int:
        """Take over entries another consumer of the group received and left idle (on every
        partition); returns alerts appended."""
        appended = 0
        for stream in self.source_streams:
            cursor = "0-0"
            while True:
                cursor, claimed, *_ = self.redis.xautoclaim(
                    stream,
                    self.group,
                    self.consumer,
                    self.claim_idle_ms,
                    start_id=cursor,
                    count=self.batch_size,
                )
                appended += self.handle(claimed, stream)
                if cursor in (b"0-0", "0-0"):
                    break
        return appended

    def read_new(self, block_ms: int | None) -> tuple[int, int]:
        """Read and handle one batch of new entries (up to ``batch_size`` per partition, all
        partitions in one XREADGROUP); returns (entries read, alerts appended)."""
        streams = dict.fromkeys(self.source_streams, ">")
        reply = self.redis.xreadgroup(
            self.group, self.consumer, streams, count=self.batch_size, block=block_ms
        )
        read = appended = 0
        for raw_stream, items in reply or []:
            if items:
                read += len(items)
                appended += self.handle(
                    items, raw_stream.decode() if isinstance(raw_stream, bytes) else raw_stream
                )
        return read, appended

    def process_available(self) -> int:
        """Handle everything there is now (idle claims, then new entries) and return; for tests and cron."""
        self.ensure_group()
        appended = self.claim_idle()
        while True:
            read, alerts = self.read_new(block_ms=None)
            appended += alerts
            if not read:
                return appended

    def run(self, stop: "Stop") -> None:
        self.ensure_group()
        last_claim = 0.0
        while not stop.requested:
            if time.monotonic() - last_claim >= 5:
                last_claim = time.monotonic()
                self.claim_idle()
            self.read_new(block_ms=1000)


class Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *_: Any) -> None:
        self.requested = True


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Publish an alert when a live call transcript says a watched phrase."
    )
    parser.add_argument(
        "--redis-url",
        default=stack_redis_url(os.environ),
        help="the stack's Redis (default: REDIS_URL, else the embedded Redis of `voicetap up` on "
        "VOICETAP_EMBEDDED_REDIS_PORT, else 6399)",
    )
    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help="consumer group (default: %(default)s)"
    )
    parser.add_argument("--consumer", default="", help="consumer name (default: host and pid)")
    parser.add_argument(
        "--from",
        dest="start",
        choices=("beginning", "now"),
        default="beginning",
        help="where a new group starts: every entry still in the topic, or only new ones (default: %(default)s)",
    )
    parser.add_argument(
        "--phrase",
        action="append",
        dest="phrases",
        help=f"a phrase to watch for (repeat; default: {', '.join(DEFAULT_PHRASES)})",
    )
    parser.add_argument(
        "--partitions",
        type=partition_count,
        default=os.environ.get("TOPIC_PARTITIONS") or "1",
        help="the stack's TOPIC_PARTITIONS: above 1, read the topic's partition streams <topic>:p<k> "
        "(default: the TOPIC_PARTITIONS environment variable, else 1)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    redis = Redis.from_url(args.redis_url)
    alerter = KeywordAlerter(
        redis,
        args.phrases or DEFAULT_PHRASES,
        group=args.group,
        consumer=args.consumer,
        start=args.start,
        partitions=args.partitions,
    )
    log.info(
        "watching %s as group %s for: %s",
        ", ".join(alerter.source_streams),
        alerter.group,
        alerter.pattern.pattern,
    )
    alerter.run(stop)


if __name__ == "__main__":
    main()
