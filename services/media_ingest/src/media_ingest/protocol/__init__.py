"""Pure media protocol code: RTP, codecs, jitter buffer, mixer, analytics, WAV. No I/O but files."""
