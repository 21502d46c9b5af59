"""A call's recording: the stereo WAV being written, its crash-safe sidecar, and the recovery of
recordings a dead instance left (``sidecar``, ``recovered``)."""
