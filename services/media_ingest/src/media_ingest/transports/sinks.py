"""What a transport needs of a call, and no more: where a leg's packets go, and whom to tell that
media arrived. A transport never sees the call, its registry or the service."""

from collections.abc import Callable
from typing import Protocol

from media_ingest.protocol.rtp import RtpPacket, Track


class PacketSink(Protocol):
    """One leg of a call's recording (``LegReceiver``): reorders, decodes and places packets."""

    def push(self, packet: RtpPacket, arrival: float) -> None: ...


class MediaSink(Protocol):
    """Both legs of a call's recording (``CallRecording``)."""

    def leg(self, track: Track) -> PacketSink: ...


Activity = Callable[[float], None]
"""Told the monotonic time media arrived (``Call.touch``): keeps the call from the idle timeout."""
