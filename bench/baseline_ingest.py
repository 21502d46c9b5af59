"""Baseline for the ingest benchmark: parse and decode packet by packet on the default asyncio loop.

    python bench/baseline_ingest.py --ports 41000-42999 --dir DIR --stats FILE

The straightforward receiver of forked RTP: one ``asyncio.DatagramProtocol`` per UDP port on the
standard asyncio event loop, each datagram parsed with ``struct`` (version, padding, CSRC count,
extension, marker, payload type, sequence, timestamp, SSRC), its PCMU payload decoded to 16-bit PCM
with numpy (a 256-entry table, one lookup per packet), loss counted from sequence gaps, and the PCM
appended to the leg's mono WAV (the ``wave`` module; one file per port). Counters are written to
``--stats`` (JSON) every second. No jitter buffer, no Redis, no analytics: only cheaper than media_ingest.
"""

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import struct
import wave
from pathlib import Path

import numpy as np


def ulaw_table() -> np.ndarray:
    """G.711 mu-law to linear, the textbook way (ITU-T G.711)."""
    table = np.zeros(256, np.int16)
    for byte in range(256):
        u = ~byte & 0xFF
        t = ((u & 0x0F) << 3) + 0x84
        t <<= (u & 0x70) >> 4
        table[byte] = (0x84 - t) if u & 0x80 else (t - 0x84)
    return table


ULAW = ulaw_table()
HEADER = struct.Struct("!BBHII")


class Leg(asyncio.DatagramProtocol):
    def __init__(self, path: Path) -> None:
        self.wav = wave.open(str(path), "wb")  # noqa: SIM115 - open for the leg's lifetime, closed at the end
        self.wav.setnchannels(1)
        self.wav.setsampwidth(2)
        self.wav.setframerate(8000)
        self.received = self.lost = self.malformed = 0
        self.last_seq: int | None = None
        self.ssrc: int | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            self.malformed += 1
            return
        first, second, seq, _timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != 2:
            self.malformed += 1
            return
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            (length,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * length
        end = len(data) - (data[-1] if first & 0x20 else 0)
        if second & 0x7F != 0:  # PCMU only
            self.malformed += 1
            return
        if ssrc != self.ssrc:  # a new stream: its sequence starts anew
            self.ssrc, self.last_seq = ssrc, None
        if self.last_seq is not None:
            gap = (seq - self.last_seq - 1) & 0xFFFF
            if gap < 1000:
                self.lost += gap
        self.last_seq = seq
        self.received += 1
        pcm = ULAW[np.frombuffer(data, np.uint8, end - offset, offset)]
        self.wav.writeframesraw(pcm.tobytes())


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ports", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args()
    first, last = (int(x) for x in args.ports.split("-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    legs: list[Leg] = []
    for port in range(first, last + 1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        leg = Leg(args.dir / f"{port}.wav")
        await loop.create_datagram_endpoint(lambda leg=leg: leg, sock=sock)
        legs.append(leg)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    args.stats.with_suffix(".ready").write_text("ready")
    while not stop.is_set():
        stats = {
            "received": sum(x.received for x in legs),
            "lost": sum(x.lost for x in legs),
            "malformed": sum(x.malformed for x in legs),
        }
        args.stats.with_suffix(".tmp").write_text(json.dumps(stats))
        args.stats.with_suffix(".tmp").replace(args.stats)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    for leg in legs:
        leg.wav.close()


if __name__ == "__main__":
    asyncio.run(main())
