-- wrk script: POST posthog-python-shaped capture bodies, each event with a fresh uuid.
--
--   wrk -t1 -c64 -d15s -s bench/capture.lua http://127.0.0.1:8000 -- /tmp/bodies.lua
--
-- The argument is a Lua file written by bench/load.py (see write_lua_data): the body split
-- around the events and each event split around its uuid and distinct_id. Building bodies
-- here, per request, is what lets wrk send unique events at full speed: the pipeline
-- deduplicates by uuid, so replaying one static body would measure almost nothing.
-- done() prints one line, "WRK-RESULT {json}", that bench/load.py parses.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local data
local counter = 0
non200 = 0

function init(args)
  data = dofile(args[1])
  math.randomseed(tid * 7919 + os.time())
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "posthog-python/7.91.1"
  for _, header in ipairs(data.headers or {}) do
    wrk.headers[header[1]] = header[2]
  end
end

local function uuid()
  counter = counter + 1
  return string.format(
    "%s-%04x-4%03x-%04x-%012x",
    data.run, tid, math.random(0, 4095), 32768 + math.random(0, 16383), counter
  )
end

local function event()
  local template = data.events[math.random(1, #data.events)]
  local values = { uuid = uuid(), distinct_id = "user-" .. math.random(0, data.distinct_ids - 1) }
  local out = { template.parts[1] }
  for i, slot in ipairs(template.slots) do
    out[#out + 1] = values[slot]
    out[#out + 1] = template.parts[i + 1]
  end
  return table.concat(out)
end

function request()
  local events = {}
  for i = 1, data.events_per_request do
    events[i] = event()
  end
  local body = data.prefix .. table.concat(events, data.separator) .. data.suffix
  return wrk.format("POST", data.path, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"duration_us": %d, "requests": %d, "bytes": %d, "non200": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end
