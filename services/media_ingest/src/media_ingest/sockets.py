"""The TCP sockets of a host's workers: the shared ``INGEST_PORT`` and each worker's private
loopback port.

A socket is only bound here; uvicorn listens on it once the worker's lifespan has started, so the
kernel hands a worker connections (SO_REUSEPORT spreads them over the listening sockets of the
port) only when it can serve them. A bound socket that never listens takes no connection: the
supervisor holds one on the shared port, which keeps the port the workers' while any restarts.
"""

import socket


def shared_socket(host: str, port: int) -> socket.socket:
    """Bound to ``host:port`` beside the other workers' (SO_REUSEPORT); port 0: one chosen now."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def private_socket() -> socket.socket:
    """A loopback port of one worker, inherited by each of its lives (the supervisor keeps it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
