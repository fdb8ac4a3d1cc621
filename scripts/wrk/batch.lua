-- wrk -s scripts/wrk/batch.lua http://127.0.0.1:PORT
-- 100 events per request: POST /api/v1/events/batch {"events": [...]}. Needs HOOKRELAY_KEY.
package.path = (debug.getinfo(1, "S").source:match("^@?(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local per_request = 100
local events = {}
for n = 1, per_request do
  events[n] = string.format('{"type":"bench.created","data":{"n":%d,"pad":"%s"}}', n, common.pad)
end
common.init("/api/v1/events/batch", '{"events":[' .. table.concat(events, ",") .. ']}', per_request)
