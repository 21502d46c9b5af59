"""A child's stderr passed through to ours line by line, its last lines kept: when a child exits
before it was ever ready, its own last error line says why the stack cannot start."""

import collections
import sys
import threading
from typing import IO


class OutputTail:
    def __init__(self, stream: IO[bytes], keep: int = 20) -> None:
        self._stream = stream
        self._lines: collections.deque[bytes] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        out = sys.stderr.buffer
        for line in iter(self._stream.readline, b""):
            self._lines.append(line)
            out.write(line)
            out.flush()
        self._stream.close()

    def last_line(self, wait: float = 2.0) -> str:
        """The last non-blank line written, once the child closed its stderr (or ``wait`` passed)."""
        self._thread.join(wait)
        for line in reversed(self._lines):
            text = line.decode(errors="replace").strip()
            if text:
                return text
        return "no message"

    def close(self, wait: float = 2.0) -> None:
        self._thread.join(wait)
