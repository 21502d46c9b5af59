"""The ``voicetap`` command."""

import argparse
import logging
import os
import re
import sys
from importlib.metadata import version
from typing import NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from voicetap_cli.call import add_call_parser
from voicetap_cli.erase import add_erase_parser
from voicetap_cli.failures import CommandFailed
from voicetap_cli.link import add_link_parser
from voicetap_cli.settings import CliSettings
from voicetap_cli.streams_cli import add_stream_parsers
from voicetap_common.command_line import voicetap_command
from voicetap_common.logs import configure_logging
from voicetap_common.settings import load_settings
from voicetap_sdk.redis_client import SyncRedisClient, sync_client_for

log = logging.getLogger("voicetap.cli")


def cmd_up(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.up import run_up

    return run_up(settings, args.demo)


def cmd_service(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.services import run_service

    if getattr(args, "workers", None) is not None:  # the service reads its settings itself
        os.environ["INGEST_WORKERS"] = str(args.workers)
    run_service(args.service)
    return 0


def cmd_keys(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.keys import make_key_pair

    private, public = make_key_pair()
    print(f"TELNYX_PUBLIC_KEY={public}")
    print(f"# private key (signs webhooks in the simulator; keep it secret): {private}")
    return 0


def _redis_url(settings: CliSettings) -> str:
    """REDIS_URL (a node of the cluster with REDIS_CLUSTER), else the embedded one `voicetap up` runs."""
    return settings.redis_url or f"redis://127.0.0.1:{settings.voicetap_embedded_redis_port}/0"


def _shown_url(url: str) -> str:
    """``url`` without its password, to be printed."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def _redis(settings: CliSettings) -> SyncRedisClient:
    """The stack's Redis; a malformed REDIS_URL is a :class:`CommandFailed`."""
    url = _redis_url(settings)
    try:
        return sync_client_for(
            url, cluster=settings.redis_cluster, socket_connect_timeout=2, socket_timeout=10
        )
    except ValueError as exc:
        raise CommandFailed(
            f"REDIS_URL={_shown_url(url)!r} is not a Redis URL ({exc}); set it like "
            "redis://HOST:PORT/DB, or unset it to use the embedded Redis of `up`"
        ) from None


def cmd_topics(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.topics_report import list_topics, render

    with _redis(settings) as redis:
        print(render(list_topics(redis, args.pattern, internal=args.all)))
    return 0


def cmd_call(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.call import CallControlApi, TranscriptionDefaults, run_call

    defaults = load_settings(TranscriptionDefaults, "voicetap call")
    local = not settings.telnyx_api_key
    default_url = (
        f"http://127.0.0.1:{settings.simulator_api_port}/v2"
        if local
        else "https://api.telnyx.com/v2"
    )
    api = CallControlApi(os.environ.get("TELNYX_BASE_URL") or default_url, local)
    with _redis(settings) as redis:
        return run_call(args, redis, api, defaults)


def cmd_tail(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.streams_cli import run_tail

    with _redis(settings) as redis:
        return run_tail(args, redis, settings.topic_partitions)


def cmd_replay(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.streams_cli import run_replay

    with _redis(settings) as redis:
        return run_replay(args, redis, settings.topic_partitions)


def cmd_erase(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.erase import run_erase

    with _redis(settings):  # a malformed REDIS_URL is one line, before anything is asked
        pass
    return run_erase(
        args,
        _redis_url(settings),
        cluster=settings.redis_cluster,
        redis_timeout_seconds=settings.redis_timeout_seconds,
        tombstone_seconds=settings.voicetap_tombstone_seconds,
        topic_maxlen=settings.topic_maxlen,
    )


def cmd_link(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.link import LinkSettings, signed_link

    print(signed_link(args, load_settings(LinkSettings, "voicetap link")))
    return 0


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line, naming where the help is, and exits 2."""

    def error(self, message: str) -> NoReturn:
        help_command = voicetap_command(f"{self.prog.removeprefix('voicetap')} --help".strip())
        self.exit(2, f"{self.prog}: {message} (see `{help_command}`)\n")


def _workers(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="voicetap", description="Live Telnyx calls as typed events on Redis Streams."
    )
    parser.add_argument("--version", action="version", version=f"voicetap {version('voicetap')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="run the whole stack (embedded Redis unless REDIS_URL is set)")
    up.add_argument(
        "--demo", action="store_true", help="also play one simulated call and print where to look"
    )
    up.set_defaults(func=cmd_up)
    # Listed for --help; `main` hands `voicetap simulate ...` to the simulator before parsing.
    sub.add_parser(
        "simulate",
        help="play simulated Telnyx calls against the stack (`voicetap simulate --help`)",
    )
    for name, text in (
        ("gateway", "the webhook gateway"),
        ("ingest", "media ingest"),
        ("indexer", "the transcript indexer"),
    ):
        service = sub.add_parser(name, help=f"run {text} alone, as a container does")
        service.set_defaults(func=cmd_service, service=name)
    sub.choices["ingest"].add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker processes on this host, one port share each (INGEST_WORKERS; 0: one per "
        "core; default 1)",
    )
    sub.add_parser(
        "keys", help="print a new Ed25519 key pair for development (writes no file)"
    ).set_defaults(func=cmd_keys)
    topics = sub.add_parser(
        "topics", help="list topics: length, time span, groups, live consumers, pending, lag"
    )
    topics.add_argument(
        "--pattern",
        default="*",
        help="only topics matching this glob (default: all; a partition is `<topic>:p<k>`)",
    )
    topics.add_argument(
        "--all",
        action="store_true",
        help="also voicetap's internal streams (per-call live transcripts, ingest inboxes)",
    )
    topics.set_defaults(func=cmd_topics)
    add_stream_parsers(sub)
    sub.choices["tail"].set_defaults(func=cmd_tail)
    sub.choices["replay"].set_defaults(func=cmd_replay)
    add_call_parser(sub)
    sub.choices["call"].set_defaults(func=cmd_call)
    add_erase_parser(sub)
    sub.choices["erase"].set_defaults(func=cmd_erase)
    add_link_parser(sub)
    sub.choices["link"].set_defaults(func=cmd_link)
    return parser


def _unreachable_redis(settings: CliSettings) -> str:
    url = _shown_url(_redis_url(settings))
    up = voicetap_command("up")
    if settings.redis_url:
        return (
            f"cannot reach Redis at {url} (REDIS_URL) — is that Redis running? "
            f"Unset REDIS_URL to use the embedded Redis of `{up}`"
        )
    return f"cannot reach Redis at {url} — is `{up}` running?"


def _run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Run the command; an expected failure becomes one line on stderr and exit status 1."""
    try:
        status: int = args.func(args, settings)
    except CommandFailed as exc:
        print(f"voicetap {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except (RedisConnectionError, RedisTimeoutError, RedisClusterException):
        print(f"voicetap {args.command}: {_unreachable_redis(settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:  # the simulator parses its own options, `--calls 5` included
        settings = load_settings(CliSettings, "voicetap")
        configure_logging("voicetap", settings.log_level, os.environ.get("LOG_FORMAT", "console"))
        from voicetap_cli.services import run_tool

        sys.exit(run_tool("simulator", argv[1:]))
    args = build_parser().parse_args(argv)
    settings = load_settings(CliSettings, f"voicetap {args.command}")
    if args.func is not cmd_service:  # a service configures its own logging
        configure_logging("voicetap", settings.log_level, os.environ.get("LOG_FORMAT", "console"))
    sys.exit(_run(args, settings))
