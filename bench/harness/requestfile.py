"""Pre-built HTTP requests, stored so that ``replay.lua`` (wrk) and ``openloop`` send each once.

File format: for each request, its length in bytes as ASCII digits, ``\\n``, then the raw
request (request line, headers, body). ``write_parts`` deals requests round-robin into one file
per load-generator thread (``PREFIX.0``, ``PREFIX.1``, ...).
"""

from pathlib import Path


def http_post(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def write_parts(prefix: Path, requests: list[bytes], parts: int) -> list[Path]:
    paths = [prefix.with_name(f"{prefix.name}.{i}") for i in range(parts)]
    for i, path in enumerate(paths):
        with path.open("wb") as f:
            for request in requests[i::parts]:
                f.write(b"%d\n" % len(request))
                f.write(request)
    return paths


def read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests, pos = [], 0
    while pos < len(data):
        newline = data.index(b"\n", pos)
        length = int(data[pos:newline])
        requests.append(data[newline + 1 : newline + 1 + length])
        pos = newline + 1 + length
    return requests
