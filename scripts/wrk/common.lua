-- Shared by single.lua and batch.lua: auth headers, per-thread status counters, and a done()
-- summary with p50/p90/p99 latency and the count of non-2xx answers.
-- Each wrk thread runs its own Lua state: response() counts in that thread's globals, setup()
-- keeps the thread objects, and done() (main state) reads every thread's counters back.

local M = {}

function M.init(path, body, events_per_request)
  local key = os.getenv("HOOKRELAY_KEY")
  if key == nil or key == "" then
    io.stderr:write("HOOKRELAY_KEY is not set\n")
    os.exit(2)
  end
  wrk.method = "POST"
  wrk.path = path
  wrk.body = body
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"

  local threads = {}

  function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
  end

  function init(args)
    statuses = {}   -- status code (as string) -> count, this thread only
    non2xx = 0
  end

  function response(status, headers, body)
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    end
  end

  function done(summary, latency, requests)
    local total = {}
    local bad = 0
    for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      local s = t:get("statuses") or {}
      for code, n in pairs(s) do
        total[code] = (total[code] or 0) + n
      end
    end
    local secs = summary.duration / 1e6
    local rps = summary.requests / secs
    local codes = {}
    for code, n in pairs(total) do
      table.insert(codes, code .. "=" .. n)
    end
    table.sort(codes)
    local e = summary.errors
    io.write("---- hookrelay summary ----\n")
    io.write(string.format("requests      %d in %.2fs\n", summary.requests, secs))
    io.write(string.format("requests/s    %.0f\n", rps))
    io.write(string.format("events/s      %.0f (%d events per request)\n",
      rps * events_per_request, events_per_request))
    io.write(string.format("latency p50   %.2f ms\n", latency:percentile(50) / 1000))
    io.write(string.format("latency p90   %.2f ms\n", latency:percentile(90) / 1000))
    io.write(string.format("latency p99   %.2f ms\n", latency:percentile(99) / 1000))
    io.write(string.format("latency max   %.2f ms\n", latency.max / 1000))
    io.write("statuses      " .. table.concat(codes, " ") .. "\n")
    io.write(string.format("non-2xx       %d\n", bad))
    io.write(string.format("socket errors connect=%d read=%d write=%d timeout=%d\n",
      e.connect, e.read, e.write, e.timeout))
  end
end

-- ~150 characters of padding, so an event is about the size of a small real one.
M.pad = string.rep("abcdefghij", 15)

return M
