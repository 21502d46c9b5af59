"""A PostgreSQL server of a test's own, so that it can really be stopped and started again: the
machine's server is shared, and a test must never restart it.

Made with the server's own tools (``initdb``, ``pg_ctl``) from the installed PostgreSQL, in a
temporary directory, on a free port, trusting local connections. PostgreSQL refuses to run as
root, so under root (as CI runs) the tools run as the ``postgres`` user the package created.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.system_parts import missing
from voicetap_cli.embedded_redis import free_port


def _bindir() -> Path | None:
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if installed:
        return installed[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class OwnPostgres:
    def __init__(self, bindir: Path, root: Path, port: int, run_as: str | None) -> None:
        self._bindir = bindir
        self._data = root / "data"
        self._log = root / "server.log"
        self.port = port
        self._run_as = run_as

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bindir / tool), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr or result.stdout}"
            )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self._data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-l",
            str(self._log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """A fast shutdown: open connections are ended, as in a restart."""
        self._run("pg_ctl", "-D", str(self._data), "-w", "-t", "30", "-m", "fast", "stop")

    def running(self) -> bool:
        return (self._data / "postmaster.pid").exists()


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        missing(
            "PostgreSQL's server tools (initdb, pg_ctl)",
            "install PostgreSQL (Debian: apt-get install postgresql)",
        )
    assert bindir is not None
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="voicetap-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            missing(
                "a postgres user to run a PostgreSQL server as (it refuses root)",
                "install PostgreSQL from Debian, which creates it",
            )
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = "postgres"
    server = OwnPostgres(bindir, root, free_port(), run_as)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
