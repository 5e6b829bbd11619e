-- Per-call cost of client:market(id) (request + JSON decode into a Lua table, keep-alive)
-- against a raw libcurl C loop doing the same GET on the same loopback server.
local polysim = require "polysim"
local core = require "polysim.core"

local info = assert(core.json_decode(assert(os.getenv "POLYSIM_BENCH_SERVER", "run through bench/run.sh")))
local N = tonumber(os.getenv "BENCH_N") or 2000
local client = polysim.new { base_url = info.base_url, api_key = info.api_key }
local first = assert(client:markets_page { limit = 1 })[1]
local id = first.condition_id

for _ = 1, 100 do assert(client:market(id)) end -- warm up
local before = client:stats().connections_opened
local t0 = core.monotime()
for _ = 1, N do assert(client:market(id)) end
local lua_us = (core.monotime() - t0) / N * 1e6
local opened = client:stats().connections_opened - before

local p = assert(io.popen(string.format("build/bench/curl_raw %s/v1/markets/%s %s %d",
  info.base_url, id, info.api_key, N)))
local raw = p:read("a")
p:close()
local raw_us, bytes = raw:match("^(%S+) (%d+)")
raw_us = assert(tonumber(raw_us), "curl_raw failed: " .. raw)

print(string.format("client:market(id)  %8.1f us/call  (%d calls, %s bytes each, %d new connections)",
  lua_us, N, bytes, opened))
print(string.format("raw libcurl loop   %8.1f us/call", raw_us))
print(string.format("ratio polysim/raw  %8.2f", lua_us / raw_us))
