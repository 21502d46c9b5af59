"""The calls of this instance: one :class:`~media_ingest.calls.call.Call` each, with explicit
transitions, kept by the :class:`~media_ingest.calls.registry.CallRegistry`."""
