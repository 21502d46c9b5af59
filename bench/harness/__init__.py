"""A reusable benchmark harness: servers pinned to their own core, load from a separate process.

Every voicetap benchmark follows the same shape (see ``bench/README.md``):

- ``machine``: what the result was measured on, and which cores run what (``CpuPlan``);
- ``procs``: the server under test as a subprocess, started pinned, ready-checked, its peak RSS;
- ``requests``: pre-built HTTP requests in a file that both load generators replay, each once;
- ``wrk``: saturation (closed loop, N keep-alive connections) with ``wrk`` and ``replay.lua``;
- ``openloop``: latency at a fixed request rate (open loop, measured from each request's
  scheduled send time, so a slow server cannot hide its queueing: no coordinated omission);
- ``redis_check``: after the load, every acknowledged event is in Redis, exactly once;
- ``report``: percentiles, JSON, Markdown.
"""
