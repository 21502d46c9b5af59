"""``voicetap erase --call CALL_CONTROL_ID | --number +E164``: erase everything voicetap holds about
a call, or about every call from or to a number, and print what went, counted per kind.

The command knows no service: it publishes the request (``voicetap_common.erasure``) and waits for
the parts, the indexer's and one per media_ingest instance running. Run again, it ends in the same
state: what is already gone counts 0.
"""

import argparse
import asyncio
import re
from datetime import UTC, datetime

from voicetap_cli.failures import CommandFailed
from voicetap_common.erasure import ErasureOutcome, new_request_id, request_erasure
from voicetap_sdk.erasure_events import ErasureRequest
from voicetap_sdk.redis_client import connect
from voicetap_sdk.streams import Producer

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
KINDS = (
    "calls",
    "transcript_segments",
    "partials",
    "live_streams",
    "recordings",
    "live_recordings",
    "topic_entries",
)


def add_erase_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    erase = sub.add_parser(
        "erase",
        help="erase one call, or every call from or to a number, everywhere voicetap keeps it",
    )
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument("--call", metavar="CALL_CONTROL_ID", help="the call to erase")
    which.add_argument("--number", metavar="+E164", help="erase every call from or to this number")
    erase.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for every service's part (default 60)",
    )


def erasure_request(args: argparse.Namespace) -> ErasureRequest:
    """The request the arguments ask for; a number that is not E.164 is a :class:`CommandFailed`."""
    number = args.number
    if number is not None and not _E164.match(number):
        raise CommandFailed(
            f"--number {number!r} is not an E.164 number; write it like +15551230000"
        )
    if args.call is not None and not args.call.strip():
        raise CommandFailed("--call needs a call_control_id")
    return ErasureRequest(
        id=new_request_id(),
        occurred_at=datetime.now(UTC),
        call_control_id=args.call,
        number=number,
    )


def render(outcome: ErasureOutcome) -> str:
    """What went, one line per kind, then the calls."""
    lines = [f"request {outcome.request_id}: {len(outcome.call_control_ids)} call(s)"]
    kinds = [*KINDS, *sorted(set(outcome.removed) - set(KINDS))]
    lines += [f"  {kind:<20} {outcome.removed.get(kind, 0)}" for kind in kinds]
    lines += [f"  call {call_id}" for call_id in outcome.call_control_ids]
    return "\n".join(lines)


async def erase(
    url: str,
    *,
    cluster: bool,
    redis_timeout_seconds: float,
    timeout_seconds: float,
    request: ErasureRequest,
    tombstone_seconds: int,
    topic_maxlen: int,
) -> ErasureOutcome:
    redis = connect(url, cluster=cluster, timeout_seconds=redis_timeout_seconds, blocking_ms=1000)
    try:
        return await request_erasure(
            redis,
            Producer(redis, topic_maxlen),
            request,
            tombstone_seconds=tombstone_seconds,
            timeout_seconds=timeout_seconds,
        )
    finally:
        await redis.aclose()


def run_erase(
    args: argparse.Namespace,
    url: str,
    *,
    cluster: bool,
    redis_timeout_seconds: float,
    tombstone_seconds: int,
    topic_maxlen: int,
) -> int:
    request = erasure_request(args)
    outcome = asyncio.run(
        erase(
            url,
            cluster=cluster,
            redis_timeout_seconds=redis_timeout_seconds,
            timeout_seconds=args.timeout,
            request=request,
            tombstone_seconds=tombstone_seconds,
            topic_maxlen=topic_maxlen,
        )
    )
    print(render(outcome))
    if outcome.missing:
        raise CommandFailed(
            f"no answer from {', '.join(outcome.missing)} within {args.timeout:g} s: is it running? "
            "The erasure is queued and goes on once it runs; run the same command again to see it finish"
        )
    return 0
