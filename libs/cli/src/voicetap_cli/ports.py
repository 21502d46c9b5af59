"""Whether a server could listen on a port, asked before anything is started."""

import errno
import socket


def bind_problem(host: str, port: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> str | None:
    """Why a server could not bind ``host:port`` now (``"in use"``, ...), or ``None`` when it can.

    Binds with ``SO_REUSEADDR`` as servers do, so connections lingering in TIME_WAIT after a stop do
    not count as a busy port, while a listening socket does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"cannot be bound: {host} is not an address of this machine"
            if exc.errno == errno.EACCES:
                return "needs privileges to bind (ports below 1024)"
            return f"cannot be bound: {exc.strerror or exc}"
        except (socket.gaierror, OverflowError) as exc:
            return f"cannot be bound on {host!r}: {exc}"
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (tests give one to each server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
