-- wrk script: replay pre-built raw HTTP requests from the file in env WRK_REQUESTS
-- (requests separated by a line "\n--8<--\n"), cycling; report JSON percentiles at the end.
local requests = {}
local index = 0

function init(args)
  local path = os.getenv("WRK_REQUESTS")
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local sep = "\n--8<--\n"
  local start = 1
  while true do
    local i, j = string.find(data, sep, start, true)
    if not i then break end
    table.insert(requests, string.sub(data, start, i - 1))
    start = j + 1
  end
  index = math.random(#requests) - 1
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests_)
  local codes = {}
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "p999_ms": %.3f, "max_ms": %.3f}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000)
  io.stderr:write("WRK-JSON " .. out .. "\n")
end
