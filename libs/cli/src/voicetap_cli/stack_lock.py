"""One stack per data directory: ``voicetap up`` holds a lock file there while it runs.

An ``flock`` (not the file's existence) is the lock, so a stack that was killed leaves no stale
lock behind; the file holds the pid of the holder, to say which process runs the stack.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

FILE_NAME = "voicetap-up.lock"


class StackRunning(Exception):
    """Another ``voicetap up`` runs on the same data directory; the message says which."""


class StackLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StackRunning(
                f"a stack is already running with its data in {self.path.parent} (pid {holder}): "
                "stop it first, or set VOICETAP_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
