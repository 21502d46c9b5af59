"""``python -m media_ingest.worker --private-fd FD --siblings JSON``: worker *k* of a host, as
``media_ingest.workers`` starts it. Its settings are the environment the supervisor gave it (its
own ``INGEST_INSTANCE_ID`` and ``INGEST_RTP_PORTS``); the flags, internal, place it on the host."""

import argparse
import json
import socket

from media_ingest.host import HostShare
from media_ingest.main import load, serve
from media_ingest.settings import IngestSettings


def _directory(value: str) -> dict[str, int]:
    found = json.loads(value)
    if not isinstance(found, dict) or not all(isinstance(p, int) for p in found.values()):
        raise ValueError("not a JSON object of instance -> port")
    return {str(instance): int(port) for instance, port in found.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m media_ingest.worker")
    parser.add_argument("--private-fd", type=int, required=True, help="its private socket")
    parser.add_argument(
        "--siblings", type=_directory, required=True, help="every worker's private port by name"
    )
    args = parser.parse_args(argv)
    settings, access = load(IngestSettings)
    serve(settings, access, HostShare(socket.socket(fileno=args.private_fd), args.siblings))


if __name__ == "__main__":
    main()
