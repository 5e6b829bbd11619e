-- What an open dashboard costs the host: events/s through a trivial strategy (price events
-- into the runtime's deliver path, the loop stepped between batches so that timers run),
-- with no dashboard, and with a dashboard whose page is open (a WebSocket client on /ws
-- receiving every push; each push refreshes the account from a local exchange over HTTP).
-- Runs alternate (A B A B ...) and the best of each is kept, so a noisy neighbour hurts both.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local strategy = require "polysim.strategy"
local dashboard = require "polysim.dashboard"
local polysim = require "polysim"

local SECONDS = tonumber(os.getenv "BENCH_DASH_SECONDS") or 3
local ROUNDS = tonumber(os.getenv "BENCH_DASH_ROUNDS") or 3
local BATCH = 2000

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local path = dir .. "/trivial.lua"
local f = assert(io.open(path, "w"))
f:write [[
  local ids = {}
  for i = 1, 10 do ids[i] = "m" .. i end
  return {
    on_start = function(ctx) ctx:subscribe(ids); ctx.state.n = 0 end,
    on_price = function(ctx) ctx.state.n = ctx.state.n + 1 end,
  }
]]
f:close()

local srv = assert(require("polysim.serve").start { port = 0, tick = false })
local client = polysim.new { base_url = srv.base_url, api_key = srv.api_key }

local events = {}
for i = 1, BATCH do
  events[i] = { type = "price", market_id = "m" .. (i % 10 + 1), buy = "0.51", sell = "0.49", seq = i }
end

local function run(with_page)
  local rt = strategy.new { client = client, feed = false, budget = 0.5, log_sink = function() end }
  assert(rt:start(path))
  local d, ws, pushes = nil, nil, 0
  if with_page then
    d = assert(dashboard.attach(rt, { port = 0, mode = "bench" }))
    local open = false
    ws = core.ws_connect { url = "ws://127.0.0.1:" .. d.port .. "/ws", max_message = 16 << 20,
      headers = "Origin: http://127.0.0.1:" .. d.port .. "\r\n",
      on_open = function() open = true end, on_message = function() pushes = pushes + 1 end }
    assert(ploop.run_until(function() return open end, 5), "the bench's page did not connect")
  end
  collectgarbage()
  local n, t0, c0 = 0, core.monotime(), os.clock()
  while core.monotime() - t0 < SECONDS do
    for i = 1, BATCH do rt:deliver(events[i]) end
    n = n + BATCH
    assert(ploop.run_until(function() return rt:idle() end, 10))
    ploop.core:step(0)          -- timers, sockets: what a host's loop does between events
  end
  local wall, cpu = core.monotime() - t0, os.clock() - c0
  assert(rt.state.n == n, "lost events")
  if ws then ws:close() end
  if d then d:close() end
  rt:stop()
  return n / wall, cpu / n * 1e6, pushes
end

local best = { [false] = { 0, math.huge, 0 }, [true] = { 0, math.huge, 0 } }
for _ = 1, ROUNDS do
  for _, page in ipairs { false, true } do
    local rate, cpu, pushes = run(page)
    local b = best[page]
    if rate > b[1] then b[1] = rate end
    if cpu < b[2] then b[2] = cpu end
    b[3] = math.max(b[3], pushes)
  end
end
srv:close()
os.execute("rm -rf " .. dir)

local off, on = best[false], best[true]
print(string.format("dashboard cost (%d rounds of %g s, best of each):", ROUNDS, SECONDS))
print(string.format("  no dashboard          %10.0f events/s  %.2f us CPU each", off[1], off[2]))
print(string.format("  page open (%d pushes)  %10.0f events/s  %.2f us CPU each", on[3], on[1], on[2]))
print(string.format("  ratio page-open/none: %.3f events/s (goal >= 0.95), %.3f CPU per event",
  on[1] / off[1], on[2] / off[2]))
