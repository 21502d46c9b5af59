"""Progress of a simulation: one redrawn bar on a terminal, a log line now and then otherwise."""

import asyncio
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

log = logging.getLogger("voicetap.simulator")


@dataclass(frozen=True)
class Snapshot:
    done: float  # calls' worth of progress, 0..total (a call half played counts 0.5)
    finished: int
    playing: int
    total: int
    webhooks: int  # delivery attempts so far
    accepted: int  # of which answered 2xx
    packets: int = 0  # media packets sent so far, every leg
    audio_seconds: float = 0.0  # audio sent so far (the longer leg of each fork or stream)


def _line(s: Snapshot, elapsed: float) -> str:
    return (
        f"{s.finished}/{s.total} calls done, {s.playing} playing, "
        f"{s.audio_seconds:.1f} s of audio sent ({s.packets} packets), "
        f"{s.accepted}/{s.webhooks} webhooks accepted, {elapsed:.0f} s"
    )


async def show_progress(
    snapshot: Callable[[], Snapshot],
    *,
    stream: TextIO = sys.stderr,
    interactive: bool | None = None,
    interval: float = 5.0,
) -> None:
    """Runs until cancelled; on a terminal redraws ``[####....] 3/10 calls …`` five times a second."""
    interactive = stream.isatty() if interactive is None else interactive
    started = time.monotonic()
    drawn = False
    try:
        while True:
            await asyncio.sleep(0.2 if interactive else interval)
            s, elapsed = snapshot(), time.monotonic() - started
            if interactive:
                width = max(10, min(30, shutil.get_terminal_size().columns - 70))
                filled = int(width * s.done / max(s.total, 1))
                stream.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {_line(s, elapsed)}\x1b[K"
                )
                stream.flush()
                drawn = True
            else:
                log.info("simulate: %s", _line(s, elapsed))
    finally:
        if drawn:
            stream.write("\n")
            stream.flush()
