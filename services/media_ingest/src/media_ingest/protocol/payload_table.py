"""RTP payload types plus private numbers for WebSocket media formats (which have none)."""

from media_ingest.protocol.codecs import CodecSpec, PayloadTypes


class PayloadTable(PayloadTypes):
    """RTP payload types, plus private numbers (128 and up, never on the wire) for the formats of
    WebSocket media, which has no payload type, so that the same receivers decode both."""

    def __init__(self, dynamic: dict[int, CodecSpec] | None = None) -> None:
        super().__init__(dynamic)
        self._private: dict[CodecSpec, int] = {}

    def private(self, spec: CodecSpec) -> int:
        pt = self._private.get(spec)
        if pt is None:
            pt = self._private[spec] = 128 + len(self._private)
            self._table[pt] = spec
        return pt
