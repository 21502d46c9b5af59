-- wrk script: replay pre-built requests, each exactly once, and record the id of every 2xx answer.
--
--   wrk -t T -c N -d D -s replay.lua URL -- REQUESTS_PREFIX ACKS_PREFIX
--
-- Thread k reads REQUESTS_PREFIX.k (format: see requestfile.py) and appends the "id" of each 2xx
-- answer's JSON body to ACKS_PREFIX.k. When a thread runs out of requests it sends GET /healthz
-- instead and counts it as `exhausted`: the harness then discards the run (never replays a
-- request, which would turn stored events into duplicates). `done` prints one line,
-- "WRKJSON {...}", with wrk's own counters and latency percentiles plus these counts.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

-- per-thread state (globals, so that `done` can read them with thread:get)
acked = 0
acked_without_id = 0
exhausted = 0
statuses = {}

local requests = {}
local next_request = 1
local acks
local fallback

function init(args)
  local f = assert(io.open(args[1] .. "." .. tid, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local newline = string.find(data, "\n", pos, true)
    local length = tonumber(string.sub(data, pos, newline - 1))
    requests[#requests + 1] = string.sub(data, newline + 1, newline + length)
    pos = newline + 1 + length
  end
  data = nil
  acks = assert(io.open(args[2] .. "." .. tid, "wb"))
  fallback = "GET /healthz HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port .. "\r\n\r\n"
end

function request()
  local r = requests[next_request]
  if r == nil then
    exhausted = exhausted + 1
    return fallback
  end
  requests[next_request] = nil
  next_request = next_request + 1
  return r
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    local id = string.match(body, '"id":%s*"([^"]+)"')
    if id then
      acks:write(id, "\n")
      acked = acked + 1
    else
      acked_without_id = acked_without_id + 1
    end
  end
end

function done(summary, latency, requests_stats)
  local total = { acked = 0, acked_without_id = 0, exhausted = 0 }
  local merged = {}
  for _, t in ipairs(threads) do
    total.acked = total.acked + t:get("acked")
    total.acked_without_id = total.acked_without_id + t:get("acked_without_id")
    total.exhausted = total.exhausted + t:get("exhausted")
    for status, count in pairs(t:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p99.9":%d},' ..
    '"statuses":{%s},"acked":%d,"acked_without_id":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ","), total.acked, total.acked_without_id, total.exhausted))
end
