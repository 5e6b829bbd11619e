-- Backtest speed: price events per second (CPU from getrusage, and wall) through a no-op
-- on_price and through examples/mean_reversion.lua, with ratios against references measured
-- in the same run (the live runtime's delivery rate; reading and decoding the file alone);
-- peak RSS for a 1 M and a 10 M event recording (the file is streamed).
-- lua5.4 bench/backtest.lua [N]
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

-- CPU (getrusage: user + sys of this process) and wall seconds of fn()
local function measure(fn)
  local r0, t0 = core.rusage("self"), core.monotime()
  local n = fn()
  local r1, t1 = core.rusage("self"), core.monotime()
  return n, (r1.user + r1.sys) - (r0.user + r0.sys), t1 - t0
end

local function line(label, n, cpu, wall, extra)
  print(string.format("%-40s %10.0f events/s CPU %10.0f wall%s", label, n / cpu, n / wall, extra or ""))
end

local function replay(path)
  return function()
    return backtest.run { strategy = path, data = data, log_sink = function() end }.events
  end
end

print(string.format("%d price events, 5 markets (figures: events per CPU second from getrusage, and per wall second)", N))
-- the references, in the same run: the live runtime's delivery (events straight into
-- rt:deliver: no feed, no exchange), and reading + decoding the recording's lines with
-- f:lines and core.json_decode (what any Lua replay pays before delivering anything)
local live_n, live_cpu, live_wall
do
  local rt = strategy.new { feed = false, log_sink = function() end }
  write(dir .. "/live.lua", "return { on_start = function(ctx) ctx:subscribe('m') end, on_price = function() end }")
  assert(rt:start(dir .. "/live.lua"))
  live_n, live_cpu, live_wall = measure(function()
    for _ = 1, N do rt:deliver { type = "price", market_id = "m", buy = "0.5", sell = "0.5" } end
    return N
  end)
end
local dec_n, dec_cpu, dec_wall = measure(function()
  local decode, n = core.json_decode, 0
  for l in io.lines(data, "L") do decode(l); n = n + 1 end
  return n - 5 -- the market records
end)
local noop_n, noop_cpu, noop_wall = measure(replay(noop))
local mr_n, mr_cpu, mr_wall = measure(replay("examples/mean_reversion.lua"))
local live_rate = live_n / live_cpu
line("backtest, no-op on_price:", noop_n, noop_cpu, noop_wall,
  string.format("  %.2fx live, goal 1,000,000", noop_n / noop_cpu / live_rate))
line("backtest, examples/mean_reversion:", mr_n, mr_cpu, mr_wall,
  string.format("  %.2fx live, goal 300,000", mr_n / mr_cpu / live_rate))
line("live runtime rt:deliver, no-op:", live_n, live_cpu, live_wall, "  (reference)")
line("reference: f:lines + json_decode only:", dec_n, dec_cpu, dec_wall,
  string.format("  backtest no-op at %.2fx", noop_n / noop_cpu / (dec_n / dec_cpu)))

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
