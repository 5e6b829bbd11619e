-- Backtest speed: price events per second through a no-op on_price and through
-- examples/mean_reversion.lua, beside the live runtime's delivery rate; peak RSS for a 1 M
-- and a 10 M event recording (the file is streamed). lua5.4 bench/backtest.lua [N]
-- (run from the source tree with LUA_PATH/LUA_CPATH as `make bench` sets them).
local core = require "polysim.core"
local backtest = require "polysim.backtest"
local strategy = require "polysim.strategy"

local N = tonumber(arg[1]) or 200000
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local recording = dofile((arg[0]:match("^(.*)/") or ".") .. "/recording.lua")
local function dataset(path, n) recording(path, n) end

local function write(path, text) local f = assert(io.open(path, "wb")); f:write(text); f:close() end
local noop = dir .. "/noop.lua"
write(noop, [[
local S = {}
function S.on_start(ctx)
  local ids = {}
  for m in ctx.client:markets { limit = 10 } do ids[#ids + 1] = m.condition_id end
  ctx:subscribe(ids)
end
function S.on_price() end
return S
]])

local data = dir .. "/data.jsonl"
dataset(data, N)

local function timed(path)
  local t0 = core.monotime()
  local res = backtest.run { strategy = path, data = data, log_sink = function() end }
  return res.events / (core.monotime() - t0)
end

print(string.format("backtest, no-op on_price:           %10.0f events/s (%d events)", timed(noop), N))
print(string.format("backtest, examples/mean_reversion:  %10.0f events/s", timed("examples/mean_reversion.lua")))

-- the live runtime: events delivered straight into rt:deliver (no feed, no exchange)
do
  local rt = strategy.new { feed = false, log_sink = function() end }
  write(dir .. "/live.lua", "return { on_start = function(ctx) ctx:subscribe('m') end, on_price = function() end }")
  assert(rt:start(dir .. "/live.lua"))
  local ev = { type = "price", market_id = "m", buy = "0.5", sell = "0.5" }
  local t0 = core.monotime()
  for _ = 1, N do rt:deliver(ev) end
  print(string.format("live runtime rt:deliver, no-op:      %10.0f events/s", N / (core.monotime() - t0)))
end

local function rss(n)
  local path = dir .. "/rss.jsonl"
  dataset(path, n)
  local exe = os.getenv("POLYSIM_EXE") or "build/bin/polysim"
  local p = io.popen(string.format("/usr/bin/time -f %%M %s backtest %s --data %s --quiet 2>&1 >/dev/null | tail -1",
    exe, noop, path))
  local kb = p:read("a")
  p:close()
  os.remove(path)
  return tonumber(kb)
end
-- the recording is streamed: peak RSS should not grow with its length. BENCH_RSS=0 skips
-- this part (about two minutes here for both files).
if os.getenv("BENCH_RSS") ~= "0" then
  if not io.open("/usr/bin/time") then
    print("peak RSS: needs GNU time (Debian: apt-get install time); skipped")
  else
    for _, n in ipairs { 1000000, 10000000 } do
      local kb = rss(n)
      print(string.format("peak RSS, %8d events:             %10s", n, kb and (kb .. " kB") or "n/a"))
    end
  end
end
os.execute("rm -rf " .. dir)
