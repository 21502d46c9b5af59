"""After the load: is every acknowledged event in Redis, exactly once?

A benchmark that loses events is not a result. The ids stored in the topics are read back (only
the ``id`` field, by a server-side script, so that hundreds of thousands of ~600-byte entries are
not shipped to the harness) and compared with the ids the load generators saw acknowledged.
"""

import time

from redis import Redis

# KEYS[1]: stream. ARGV[1]: start (inclusive id, or "(" + id for exclusive), ARGV[2]: count.
# Returns {last entry id or "", {id field of each entry}}.
_IDS_PAGE = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local ids = {}
local last = ''
for _, entry in ipairs(entries) do
  last = entry[1]
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'id' then
      ids[#ids + 1] = fields[j + 1]
      break
    end
  end
end
return {last, ids}
"""


def streams(redis: Redis, pattern: str) -> list[str]:
    return sorted(k.decode() for k in redis.scan_iter(match=pattern, count=1000, _type="stream"))


def total_length(redis: Redis, pattern: str) -> int:
    return sum(int(redis.xlen(s)) for s in streams(redis, pattern))


def wait_quiet(redis: Redis, pattern: str, stable_s: float = 1.0, timeout_s: float = 30.0) -> int:
    """The topics' total length once it stopped changing: requests a server accepted before the
    load generator hung up are still processed (a sync server works through its listen backlog)."""
    started, last, since = time.monotonic(), -1, time.monotonic()
    while time.monotonic() - started < timeout_s:
        current = total_length(redis, pattern)
        if current != last:
            last, since = current, time.monotonic()
        elif time.monotonic() - since >= stable_s:
            return current
        time.sleep(0.1)
    return last


def stored_ids(redis: Redis, pattern: str, page: int = 20_000) -> list[str]:
    script = redis.register_script(_IDS_PAGE)
    ids: list[str] = []
    for stream in streams(redis, pattern):
        start = "-"
        while True:
            last, page_ids = script(keys=[stream], args=[start, page])
            ids += [i.decode() for i in page_ids]
            if len(page_ids) < page or not last:
                break
            start = "(" + last.decode()
    return ids


def verify(
    redis: Redis, pattern: str, phases: dict[str, tuple[set[str], list[str], int]]
) -> dict[str, object]:
    """Compare what is stored with what was sent and acknowledged, phase by phase.

    ``phases``: name -> (ids sent in that phase, ids acknowledged 2xx, connections). Every
    acknowledged id must be stored, nothing may be stored twice, and nothing may be stored that
    was not sent. Events stored but never acknowledged are requests in flight when the load
    generator stopped: at most one per connection.
    """
    stored = stored_ids(redis, pattern)
    stored_set = set(stored)
    xlen = total_length(redis, pattern)
    report: dict[str, object] = {
        "xlen_total": xlen,
        "stored_ids_read": len(stored),
        "duplicates_stored": len(stored) - len(stored_set),
    }
    sent_all: set[str] = set()
    ok = xlen == len(stored) and len(stored) == len(stored_set)
    for name, (sent, acked, connections) in phases.items():
        sent_all |= sent
        acked_set = set(acked)
        stored_here = stored_set & sent
        missing = acked_set - stored_set
        unacked = stored_here - acked_set
        phase = {
            "acknowledged_2xx": len(acked),
            "acknowledged_twice": len(acked) - len(acked_set),
            "stored": len(stored_here),
            "acknowledged_but_missing": len(missing),
            "stored_but_unacknowledged": len(unacked),
            "unacknowledged_bound": connections,
        }
        phase["ok"] = not missing and len(acked) == len(acked_set) and len(unacked) <= connections
        ok = ok and bool(phase["ok"])
        report[name] = phase
    report["stored_but_never_sent"] = len(stored_set - sent_all)
    report["all_acknowledged_stored_once"] = ok and not (stored_set - sent_all)
    return report
