"""``voicetap link CALL_ID [--ttl SECONDS] [--what recording|transcript]``: print a signed URL that
opens a call's recording (served by the ingest) or transcript (the indexer) without a header, for
an audio player, a browser or a ticket, until it expires.

The link is signed here with the services' own key (``VOICETAP_LINK_SECRET``, else derived from the
first ``VOICETAP_API_TOKEN``): nothing is asked of any server. Base URLs come from
``VOICETAP_PUBLIC_INGEST_URL`` / ``VOICETAP_PUBLIC_INDEXER_URL``, else 127.0.0.1 with
``INGEST_PORT`` / ``INDEXER_PORT`` (what ``voicetap up`` serves)."""

import argparse

from pydantic import Field, SecretStr

from voicetap_cli.failures import CommandFailed
from voicetap_common.access import MAX_LINK_TTL_SECONDS, link_path, signed_url
from voicetap_common.settings import CommonSettings, access_settings


class LinkSettings(CommonSettings):
    """What ``voicetap link`` reads besides the common settings: where the services listen (the
    same variables they read), and the indexer's alias of the token."""

    ingest_port: int = Field(default=8001, ge=1, le=65535)
    indexer_port: int = Field(default=8002, ge=1, le=65535)
    indexer_api_token: SecretStr | None = None


def add_link_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    link = sub.add_parser(
        "link", help="print a signed, expiring URL of a call's recording or transcript"
    )
    link.add_argument("call_control_id", metavar="CALL_ID", help="the call's call_control_id")
    link.add_argument(
        "--ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help=f"how long the link opens (default 3600, at most {MAX_LINK_TTL_SECONDS})",
    )
    link.add_argument(
        "--what",
        choices=("recording", "transcript"),
        default="recording",
        help="the recording (WAV, from the ingest) or the transcript (JSON, from the indexer)",
    )


def signed_link(args: argparse.Namespace, settings: LinkSettings, now: float | None = None) -> str:
    if not 1 <= args.ttl <= MAX_LINK_TTL_SECONDS:
        raise CommandFailed(f"--ttl must be between 1 and {MAX_LINK_TTL_SECONDS} seconds")
    if not args.call_control_id.strip():
        raise CommandFailed("CALL_ID must not be empty")
    key = access_settings(settings, settings.indexer_api_token).link_key
    if key is None:
        raise CommandFailed(
            "no key to sign with: set VOICETAP_API_TOKEN (or VOICETAP_LINK_SECRET) as the "
            "services have it"
        )
    if args.what == "recording":
        base = settings.voicetap_public_ingest_url or f"http://127.0.0.1:{settings.ingest_port}"
    else:
        base = settings.voicetap_public_indexer_url or f"http://127.0.0.1:{settings.indexer_port}"
    return signed_url(base, key, link_path(args.call_control_id, args.what), args.ttl, now)
