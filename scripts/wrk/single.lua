-- wrk -s scripts/wrk/single.lua http://127.0.0.1:PORT
-- One event per request: POST /api/v1/events. Needs HOOKRELAY_KEY (an API or admin key).
package.path = (debug.getinfo(1, "S").source:match("^@?(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local body = string.format('{"type":"bench.created","data":{"n":1,"pad":"%s"}}', common.pad)
common.init("/api/v1/events", body, 1)
