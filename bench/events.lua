-- Events per second through a trivial strategy: price events pushed into the runtime's
-- deliver path (the one the streams use) and handled by an on_price that counts them, each
-- in a task of its own under the time budget. Reference, measured in the same run: the
-- same on_price called directly in a loop. Also: the path of callbacks that wait (each
-- yields once to the loop before returning).
local core = require "polysim.core"
local ploop = require "polysim.loop"
local strategy = require "polysim.strategy"

local N = tonumber(os.getenv "BENCH_N") or 200000
local MARKETS = 10

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
    on_price = function(ctx, msg)
      ctx.state.n = ctx.state.n + 1
      if msg.wait then ctx:sleep(0) end
    end,
  }
]]
f:close()

local events = {}
for i = 1, N do
  events[i] = { type = "price", market_id = "m" .. (i % MARKETS + 1), buy = "0.51", sell = "0.49", seq = i }
end

local function run(budget, wait, n)
  local rt = strategy.new { feed = false, budget = budget, log_sink = function() end }
  assert(rt:start(path))
  collectgarbage()
  local t0 = core.monotime()
  for i = 1, n do
    local ev = events[i]
    ev.wait = wait
    rt:deliver(ev)
  end
  assert(ploop.run_until(function() return rt:idle() end, 60))
  local took = core.monotime() - t0
  assert(rt.state.n == n, "lost events: " .. rt.state.n .. " of " .. n)
  rt:stop()
  return n / took
end

-- reference: the callback alone
local mod = dofile(path)
local ctx = { state = { n = 0 }, subscribe = function() end }
mod.on_start(ctx)
local t0 = core.monotime()
for i = 1, N do mod.on_price(ctx, events[i]) end
local direct = N / (core.monotime() - t0)

run(0.5, false, N // 4) -- warm-up
local budgeted = run(0.5, false, N)
local unbudgeted = run(false, false, N)
local waiting = run(0.5, true, N // 10)

print(string.format("events/s through a trivial strategy (%d events, %d markets):", N, MARKETS))
print(string.format("  with the time budget     %10.0f /s  (%.2f us each)", budgeted, 1e6 / budgeted))
print(string.format("  without a budget         %10.0f /s  (%.2f us each)", unbudgeted, 1e6 / unbudgeted))
print(string.format("  callbacks that wait once %10.0f /s  (%d events)", waiting, N // 10))
print(string.format("  reference: direct call   %10.0f /s", direct))
print(string.format("  ratio runtime/direct: %.3f (the price of a task, isolation and ordering per event)",
  budgeted / direct))
os.execute("rm -rf " .. dir)
