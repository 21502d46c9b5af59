"""``python -m voicetap_cli.run NAME``: run one service's ``main`` (how `voicetap up` starts each)."""

import sys

from voicetap_cli.services import run_service

if __name__ == "__main__":
    run_service(sys.argv[1])
