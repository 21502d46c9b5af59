"""Load generator for the ingest benchmark: paced two-leg PCMU calls as forked RTP over UDP.

    python bench/rtp_load.py --targets FILE --first 0 --count 500 --duration 20 --out OUT.json

``--targets`` is a JSON list of ``[rx_port, tx_port]`` (127.0.0.1). Calls ``first`` to
``first + count`` get two legs each (inbound to rx, outbound to tx): 20 ms PCMU packets, 50 per
second per leg, RTP header per RFC 3550 (random SSRC, sequence and timestamp origins, marker on the
first packet). Packets are paced on a 20 ms tick: at tick ``k`` (due at ``start + k * 20 ms``)
every leg's packet ``k`` is sent from one UDP socket, so 1,000 calls are 2,000 datagrams per tick;
a tick that starts late is counted (``late_ticks``) and never skipped, so every packet is sent.
Python has no ``sendmmsg``; one ``sendto`` per packet costs ~3-5 µs, so the harness splits large
loads over several of these processes. Payloads are pre-built (50 distinct noise frames per leg
set, cycled); only the 12-byte header is packed per packet.
"""

import argparse
import json
import os
import socket
import struct
import time
from pathlib import Path

TICK = 0.020
_HEADER = struct.Struct("!BBHII")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=Path, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument(
        "--start-at",
        type=float,
        default=0.0,
        help="time.time() of tick 0 (to align several senders)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    targets = json.loads(args.targets.read_text())[args.first : args.first + args.count]
    rng = os.urandom
    frames = [
        bytes(b | 0x01 for b in rng(160)) for _ in range(50)
    ]  # never 0xFF/0x7F silence: real-looking noise
    legs = []
    for rx, tx in targets:
        for port in (rx, tx):
            ssrc, seq, ts = (
                int.from_bytes(rng(4), "big"),
                int.from_bytes(rng(2), "big"),
                int.from_bytes(rng(4), "big"),
            )
            legs.append([("127.0.0.1", port), ssrc, seq, ts])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sendto, pack = sock.sendto, _HEADER.pack
    ticks = int(args.duration / TICK)
    start = args.start_at or time.time() + 0.2
    while time.time() < start:
        time.sleep(min(0.01, max(start - time.time(), 0)))
    t0 = time.perf_counter() - (time.time() - start)
    sent = errors = late = 0
    max_lag = 0.0
    busy = 0.0
    for k in range(ticks):
        due = t0 + k * TICK
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        else:
            lag = now - due
            if lag > TICK:
                late += 1
            max_lag = max(max_lag, lag)
        began = time.perf_counter()
        frame = frames[k % 50]
        second = 0x80 if k == 0 else 0
        for leg in legs:
            addr, ssrc, seq, ts = leg
            try:
                sendto(
                    pack(0x80, second, (seq + k) & 0xFFFF, (ts + 160 * k) & 0xFFFFFFFF, ssrc)
                    + frame,
                    addr,
                )
                sent += 1
            except OSError:
                errors += 1  # ENOBUFS: the packet is lost on our side; counted, and compared below
        busy += time.perf_counter() - began
    args.out.write_text(
        json.dumps(
            {
                "legs": len(legs),
                "ticks": ticks,
                "packets_sent": sent,
                "send_errors": errors,
                "late_ticks": late,
                "max_tick_lag_ms": round(max_lag * 1e3, 2),
                "send_busy_share": round(busy / (ticks * TICK), 3),
                "elapsed_s": round(time.perf_counter() - t0, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
