"""The ``voicetap`` command."""

import argparse
import logging
import os
import sys
from importlib.metadata import version

from voicetap_cli.call import add_call_parser
from voicetap_cli.settings import CliSettings
from voicetap_cli.streams_cli import add_stream_parsers
from voicetap_common.logs import configure_logging
from voicetap_common.redis_client import SyncRedisClient, sync_client_for
from voicetap_common.settings import load_settings

log = logging.getLogger("voicetap.cli")


def cmd_up(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.up import run_up

    return run_up(settings, args.demo)


def cmd_service(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.services import run_service

    run_service(args.service)
    return 0


def cmd_keys(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.keys import make_key_pair

    private, public = make_key_pair()
    print(f"TELNYX_PUBLIC_KEY={public}")
    print(f"# private key (signs webhooks in the simulator; keep it secret): {private}")
    return 0


def _redis(settings: CliSettings) -> SyncRedisClient:
    """The stack's Redis: REDIS_URL (a node of the cluster with REDIS_CLUSTER), else the embedded
    one `voicetap up` runs."""
    url = settings.redis_url or f"redis://127.0.0.1:{settings.voicetap_embedded_redis_port}/0"
    return sync_client_for(
        url, cluster=settings.redis_cluster, socket_connect_timeout=2, socket_timeout=10
    )


def cmd_topics(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.topics_report import list_topics, render

    with _redis(settings) as redis:
        print(render(list_topics(redis, args.pattern)))
    return 0


def cmd_call(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.call import run_call

    with _redis(settings) as redis:
        return run_call(args, redis)


def cmd_tail(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.streams_cli import run_tail

    with _redis(settings) as redis:
        return run_tail(args, redis, settings.topic_partitions)


def cmd_replay(args: argparse.Namespace, settings: CliSettings) -> int:
    from voicetap_cli.streams_cli import run_replay

    with _redis(settings) as redis:
        return run_replay(args, redis, settings.topic_partitions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    sub.add_parser(
        "keys", help="print a new Ed25519 key pair for development (writes no file)"
    ).set_defaults(func=cmd_keys)
    topics = sub.add_parser("topics", help="list topics: length, time span, groups, pending, lag")
    topics.add_argument(
        "--pattern",
        default="*",
        help="only topics matching this glob (default: all; a partition is `<topic>:p<k>`)",
    )
    topics.set_defaults(func=cmd_topics)
    add_stream_parsers(sub)
    sub.choices["tail"].set_defaults(func=cmd_tail)
    sub.choices["replay"].set_defaults(func=cmd_replay)
    add_call_parser(sub)
    sub.choices["call"].set_defaults(func=cmd_call)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:  # the simulator parses its own options, `--calls 5` included
        settings = CliSettings()
        configure_logging("voicetap", settings.log_level, os.environ.get("LOG_FORMAT", "console"))
        from voicetap_cli.services import run_tool

        sys.exit(run_tool("simulator", argv[1:]))
    args = build_parser().parse_args(argv)
    settings = load_settings(CliSettings, f"voicetap {args.command}")
    if args.func is not cmd_service:  # a service configures its own logging
        configure_logging("voicetap", settings.log_level, os.environ.get("LOG_FORMAT", "console"))
    sys.exit(args.func(args, settings))
