"""``python -m voicetap_cli.run NAME [ARGS]``: run one service's ``main``, or a tool with its arguments.

This is how `voicetap up` starts each child process.
"""

import sys

from voicetap_cli.services import installed_services, run_service, run_tool

if __name__ == "__main__":
    name, argv = sys.argv[1], sys.argv[2:]
    if name in installed_services():
        run_service(name)
    else:
        sys.exit(run_tool(name, argv))
