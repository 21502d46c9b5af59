"""How media reaches a call: forked RTP over UDP, Telnyx media streams over WebSocket, and playback
back into streamed calls. Transports see a call only through ``sinks`` (narrow Protocols)."""
