"""HTTP ``Range: bytes=…`` requests (RFC 9110 §14): the one byte range a recording is served in.

Pure: no I/O. Browsers' audio elements ask for one range (``bytes=0-``, then ``bytes=N-`` when
seeking); a request for several ranges is answered whole (200), which RFC 9110 allows.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ByteRange:
    start: int  # first byte
    end: int  # one past the last byte

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


class Unsatisfiable(ValueError):
    """No byte of the range is in the object (answered 416 with ``Content-Range: bytes */size``)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks of an object of ``size`` bytes; None: send it whole (no header, a
    header of another unit, several ranges, or one that does not parse, which RFC 9110 says to
    ignore). Raises :class:`Unsatisfiable` when the range starts past the end."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or (not first and last.isdigit())):
        return None
    if last and not last.isdigit():
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable(header)
    end = min(int(last) + 1, size) if last else size
    return ByteRange(start, end)
