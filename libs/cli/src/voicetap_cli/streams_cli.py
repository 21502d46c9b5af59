"""``voicetap tail`` (follow a topic live) and ``voicetap replay`` (rewind a consumer group)."""

import argparse
from datetime import datetime

import orjson
from redis import Redis


def start_id(value: str) -> str:
    """``beginning``/``0``, ``now``/``$``, an entry id, or an ISO time (the first entry at or after it)."""
    if value in ("beginning", "0"):
        return "0"
    if value in ("now", "$"):
        return "$"
    if value.replace("-", "").isdigit() and value.count("-") <= 1:
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an entry id, 'beginning', 'now' or an ISO time: {value!r}") from None
    return f"{max(int(moment.timestamp() * 1000) - 1, 0)}-18446744073709551615"


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


def run_tail(args: argparse.Namespace, redis: Redis) -> int:
    cursors = {topic: start_id(args.from_) for topic in args.topics}
    shown = 0
    try:
        while args.count is None or shown < args.count:
            reply = redis.xread(cursors, count=100, block=1000)
            for topic, entries in reply or []:
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


def run_replay(args: argparse.Namespace, redis: Redis) -> int:
    groups = {g["name"].decode(): g for g in redis.xinfo_groups(args.topic)} if redis.exists(args.topic) else {}
    if args.group not in groups:
        print(f"no group {args.group!r} on {args.topic} (groups: {', '.join(groups) or 'none'})")
        return 1
    target = start_id(args.from_)
    redis.xgroup_setid(args.topic, args.group, target if target != "0" else "0-0")
    print(f"group {args.group} on {args.topic} will re-read entries after {target}")
    return 0


def add_stream_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    tail = sub.add_parser("tail", help="follow topics live, pretty-printed")
    tail.add_argument("topics", nargs="+", metavar="TOPIC")
    tail.add_argument("--from", dest="from_", default="now", help="now (default), beginning, an entry id or an ISO time")
    tail.add_argument("--count", type=int, default=None, help="stop after this many entries")
    replay = sub.add_parser("replay", help="rewind a consumer group so it re-processes history")
    replay.add_argument("topic", metavar="TOPIC")
    replay.add_argument("--group", required=True)
    replay.add_argument("--from", dest="from_", required=True, help="beginning, an entry id or an ISO time")
