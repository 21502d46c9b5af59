#!/usr/bin/env python3
"""Set up and run voicetap with nothing but Python 3.11+.

    python3 dev.py up        # start the whole stack (embedded Redis unless REDIS_URL is set)
    python3 dev.py test      # run the test suite
    python3 dev.py ARGS...   # any other `voicetap` command, e.g. `python3 dev.py topics`

The first run makes `.venv` here, installs uv into it, and installs the locked workspace
(`uv sync --frozen`); later runs only re-sync, which is instant when nothing changed. Commands run
in the directory you call them from, so its `.env` and `.voicetap` data directory are the ones
used; only the tests run from the repository root, where their configuration is.
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
UV_VERSION = "0.13.9"


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is, to say so clearly
        sys.exit(f"voicetap needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "uv").exists():
        if not (BIN / "python").exists():
            venv.create(VENV, with_pip=True)
        subprocess.run(
            [str(BIN / "python"), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
            check=True,
        )
    env = {**os.environ, "VIRTUAL_ENV": str(VENV), "UV_PROJECT_ENVIRONMENT": str(VENV)}
    subprocess.run(
        [str(BIN / "uv"), "sync", "--frozen", "--all-packages", "--quiet"],
        cwd=ROOT,
        check=True,
        env=env,
    )


def main(argv: list[str]) -> None:
    ensure_environment()
    if argv[:1] == ["test"]:
        command = [str(BIN / "python"), "-m", "pytest", *argv[1:]]
        os.chdir(ROOT)
    else:
        command = [str(BIN / "voicetap"), *argv]
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
