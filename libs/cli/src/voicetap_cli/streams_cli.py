"""``voicetap tail`` (follow a topic live) and ``voicetap replay`` (rewind a consumer group).

Both take a start as ``beginning``, ``now``, an entry id or an ISO time, and both include the
entry named: ``--from ID`` starts with entry ID itself, ``--from TIME`` with the first entry at or
after TIME. Redis reads strictly *after* an id, so a start is turned into the id just before it.

With ``TOPIC_PARTITIONS`` above 1 a partitioned topic is its partition streams: ``tail`` follows
each (an entry is shown under its stream's name, in order within its stream, so within its call),
and ``replay`` rewinds the group on each, an entry id then being a point in time on every one.
"""

import argparse
import difflib
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson
from redis import RedisCluster
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from voicetap_cli.failures import CommandFailed
from voicetap_cli.topics_report import stream_names
from voicetap_common.command_line import voicetap_command
from voicetap_sdk.partitions import streams_of
from voicetap_sdk.redis_client import SyncRedisClient, keys_by_slot

MAX_SEQUENCE = 2**64 - 1
_PARTITION = re.compile(r":p\d+$")
_ENTRY_ID = re.compile(r"(\d+)(?:-(\d+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# XREAD's answer: (topic, [(entry id, fields), ...]) per topic that had entries.
Reply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


def _just_before(millis: int, sequence: int) -> str:
    """The greatest entry id below ``millis-sequence``: reading after it includes that entry."""
    if sequence > 0:
        return f"{millis}-{sequence - 1}"
    if millis > 0:
        return f"{millis - 1}-{MAX_SEQUENCE}"
    return "0-0"


def start_id(value: str) -> str:
    """The id to read after: ``0-0`` for ``beginning``/``0``, ``$`` for ``now``/``$``, else the id
    just before the entry id or ISO time given (a time without a zone is local time)."""
    if value in ("beginning", "0"):
        return "0-0"
    if value in ("now", "$"):
        return "$"
    if match := _ENTRY_ID.fullmatch(value):
        millis, sequence = int(match[1]), int(match[2] or 0)
        if sequence > MAX_SEQUENCE:
            raise argparse.ArgumentTypeError(
                f"the sequence number of {value!r} is above {MAX_SEQUENCE}"
            )
        return _just_before(millis, sequence)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an entry id, 'beginning', 'now' or an ISO time: {value!r}"
        ) from None
    since_epoch = (moment if moment.tzinfo else moment.astimezone()) - _EPOCH
    # An entry of millisecond M is "at or after" the time when M >= the time, hence the ceiling.
    return _just_before(max(math.ceil(since_epoch / timedelta(milliseconds=1)), 0), 0)


def last_generated_id(redis: SyncRedisClient, topic: str) -> str:
    """The id of the last entry ever added to ``topic`` (even if trimmed since), or ``0-0`` when the
    topic does not exist yet, so that its first entry is read."""
    try:
        last = redis.xinfo_stream(topic)["last-generated-id"]
    except ResponseError as exc:
        if "no such key" not in str(exc).lower():
            raise
        return "0-0"
    return last.decode() if isinstance(last, bytes) else str(last)


def follow_positions(redis: SyncRedisClient, topics: Sequence[str], start: str) -> dict[str, str]:
    """Each topic's position, resolved once. ``$`` must not be sent with every XREAD: it means "the
    newest entry at the time of this call", so whatever a topic got between two calls before its
    first entry reached us would be skipped."""
    if start != "$":
        return dict.fromkeys(topics, start)
    return {topic: last_generated_id(redis, topic) for topic in topics}


@dataclass(frozen=True)
class Start:
    """A ``--from`` as given, and the id to read after."""

    given: str
    after: str


def parse_start(value: str) -> Start:
    """The argparse type of ``--from``: a bad value is refused like any bad argument."""
    return Start(value, start_id(value))


def format_entry(topic: str, entry_id: bytes, fields: dict[bytes, bytes]) -> str:
    millis = int(entry_id.split(b"-")[0])
    when = datetime.fromtimestamp(millis / 1000).isoformat(timespec="milliseconds")
    lines = [f"── {topic} {entry_id.decode()} {when}"]
    for name, value in fields.items():
        key = name.decode(errors="replace")
        if key == "event":
            try:
                pretty = orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode()
                lines.append("   event: " + pretty.replace("\n", "\n   "))
                continue
            except orjson.JSONDecodeError:
                pass
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = f"<{len(value)} bytes>"
        lines.append(f"   {key}: {text}")
    return "\n".join(lines)


def _xread(redis: SyncRedisClient, cursors: dict[str, str], block_ms: int | None) -> Reply:
    # the client never decodes (RESP2, bytes): [(stream, [(id, fields), ...])], None on time-out
    streams = cast("dict[KeyT, StreamIdT]", cursors)
    return cast(Reply, redis.xread(streams, count=100, block=block_ms) or [])


def read_after(redis: SyncRedisClient, cursors: dict[str, str], block_ms: int) -> Reply:
    """XREAD of every topic after its cursor. On a cluster one XREAD per hash slot (a cluster
    refuses one across slots), the block time shared between them; once one brought entries, the
    rest do not block."""
    if not isinstance(redis, RedisCluster):
        return _xread(redis, cursors, block_ms)
    slots = keys_by_slot(redis, cursors)
    share = max(block_ms // len(slots), 1)
    reply: Reply = []
    for streams in slots:
        reply += _xread(
            redis, {stream: cursors[stream] for stream in streams}, None if reply else share
        )
    return reply


def missing_topic_notes(
    redis: SyncRedisClient, topics: Sequence[str], partitions: int
) -> list[str]:
    """A line for each of ``topics`` that does not exist (yet), with the closest existing names."""
    notes = []
    for topic in topics:
        if any(redis.exists(stream) for stream in streams_of(topic, partitions)):
            continue
        names = {_PARTITION.sub("", name) for name in stream_names(redis, internal=True)}
        # A name the topic ends (`call.hangup` for `telnyx.call.hangup`), then near spellings.
        close = [name for name in sorted(names) if name.endswith("." + topic)]
        close += difflib.get_close_matches(topic, sorted(names), n=3, cutoff=0.8)
        close = list(dict.fromkeys(close))[:3]
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        notes.append(f"there is no topic {topic} yet; {hint}following it in case it appears")
    return notes


def run_tail(args: argparse.Namespace, redis: SyncRedisClient, partitions: int) -> int:
    shown = 0
    streams = [stream for topic in args.topics for stream in streams_of(topic, partitions)]
    try:
        cursors = follow_positions(redis, streams, args.from_.after)
        # On stderr, so that stdout holds only entries; once printed, every new entry will be shown.
        print(
            f"following {', '.join(args.topics)} from {args.from_.given} (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
        for note in missing_topic_notes(redis, args.topics, partitions):
            print(note, file=sys.stderr, flush=True)
        while args.count is None or shown < args.count:
            for topic, entries in read_after(redis, cursors, 1000):
                name = topic.decode()
                for entry_id, fields in entries:
                    cursors[name] = entry_id.decode()
                    print(format_entry(name, entry_id, fields), flush=True)
                    shown += 1
                    if args.count is not None and shown >= args.count:
                        return 0
    except KeyboardInterrupt:
        pass
    return 0


def run_replay(args: argparse.Namespace, redis: SyncRedisClient, partitions: int) -> int:
    streams = streams_of(args.topic, partitions)
    for stream in streams:
        groups = (
            {g["name"].decode(): g for g in redis.xinfo_groups(stream)}
            if redis.exists(stream)
            else {}
        )
        if args.group not in groups:
            raise CommandFailed(
                f"no group {args.group!r} on {stream} (groups: {', '.join(groups) or 'none'}; "
                f"`{voicetap_command('topics')}` lists each topic's groups)"
            )
    start: Start = args.from_
    for stream in streams:
        redis.xgroup_setid(stream, args.group, start.after)
    if start.after == "$":
        what = "only entries added from now on"
    elif start.after == "0-0":
        what = "every entry from the beginning"
    else:
        what = f"entries from {start.given} on, that entry included"
    where = (
        args.topic if len(streams) == 1 else f"{args.topic} (each of its {len(streams)} partitions)"
    )
    print(f"group {args.group} on {where} will read {what}")
    return 0


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


START_HELP = "an entry id (that entry included) or an ISO time (the first entry at or after it; no zone: local time)"


def add_stream_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    tail = sub.add_parser("tail", help="follow topics live, pretty-printed")
    tail.add_argument("topics", nargs="+", metavar="TOPIC")
    tail.add_argument(
        "--from",
        dest="from_",
        type=parse_start,
        default="now",
        help=f"now (default), beginning, {START_HELP}",
    )
    tail.add_argument(
        "--count", type=_at_least_one, default=None, help="stop after this many entries (1 or more)"
    )
    replay = sub.add_parser(
        "replay",
        help="rewind a consumer group so it re-processes history",
        description="Rewind a consumer group: its next reads start at --from, inclusive (replay "
        "--from ID re-processes entry ID itself).",
    )
    replay.add_argument("topic", metavar="TOPIC")
    replay.add_argument("--group", required=True)
    replay.add_argument(
        "--from",
        dest="from_",
        type=parse_start,
        required=True,
        help=f"beginning, now, {START_HELP}",
    )
