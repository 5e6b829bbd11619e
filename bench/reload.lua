-- Hot reload timing. (1) Time from a file write to the new version handling events: a
-- strategy receives a price event every millisecond (as from a stream); the file is saved
-- by rename, the inotify watcher reloads it, and the clock stops when an on_price of the
-- new version runs. (2) The reload itself (compile, start the new version beside the old,
-- swap) without inotify, repeated. Reference, measured in the same run: loadfile + calling
-- the chunk, the least any reload must do.
local core = require "polysim.core"
local ploop = require "polysim.loop"
local strategy = require "polysim.strategy"
local reload = require "polysim.reload"

local ROUNDS = tonumber(os.getenv "BENCH_ROUNDS") or 30
local DIRECT = tonumber(os.getenv "BENCH_N") or 2000

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local path = dir .. "/live.lua"

local SRC = [[
  local V = %d
  return {
    on_start = function(ctx) ctx:subscribe "m"; ctx.state.first = {} end,
    on_reload = function(ctx) end,
    on_price = function(ctx)
      local first = ctx.state.first
      if not first[V] then first[V] = ctx:monotime() end
    end,
  }
]]

local function save(v)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(SRC:format(v))
  f:close()
  assert(os.rename(tmp, path))
end

local function stats(list)
  table.sort(list)
  local n = #list
  local sum = 0
  for _, x in ipairs(list) do sum = sum + x end
  return string.format("median %6.2f ms  p90 %6.2f ms  min %6.2f ms  max %6.2f ms  mean %6.2f ms",
    list[(n + 1) // 2] * 1e3, list[math.ceil(n * 0.9)] * 1e3, list[1] * 1e3, list[n] * 1e3, sum / n * 1e3)
end

local function write_to_handling(debounce)
  save(0)
  local rt = strategy.new { feed = false, log_sink = function() end }
  assert(rt:start(path))
  local w = assert(reload.watch(rt, { debounce = debounce }))
  local seq = 0
  local stop_stream = ploop.every(0.001, function()
    seq = seq + 1
    rt:deliver { type = "price", market_id = "m", seq = seq }
  end)
  local latencies = {}
  for v = 1, ROUNDS do
    ploop.run_until(function() return false end, 0.02) -- let the stream run a little
    local t0 = core.monotime()
    save(v)
    assert(ploop.run_until(function() return rt.state.first[v] ~= nil end, 5), "version " .. v .. " never ran")
    latencies[#latencies + 1] = rt.state.first[v] - t0
  end
  stop_stream()
  w:close()
  rt:stop()
  assert(rt.stats.reloads == ROUNDS, "reloads: " .. rt.stats.reloads)
  return latencies
end

local with_debounce = write_to_handling(reload.DEBOUNCE)
local no_debounce = write_to_handling(0)

-- (2) the reload alone
save(0)
local rt = strategy.new { feed = false, log_sink = function() end }
assert(rt:start(path))
local took = {}
for i = 1, DIRECT do
  if i % 100 == 0 then save(i) end
  local n, t = rt:reload()
  assert(n, t)
  took[#took + 1] = t
end
rt:stop()

local t0 = core.monotime()
for _ = 1, DIRECT do
  local chunk = assert(loadfile(path, "t", setmetatable({}, { __index = _G })))
  chunk()
end
local reference = (core.monotime() - t0) / DIRECT

print(string.format("file write -> new version handling events (%d saves, events every 1 ms):", ROUNDS))
print(string.format("  debounce %2.0f ms: %s", reload.DEBOUNCE * 1e3, stats(with_debounce)))
print(string.format("  debounce  0 ms: %s", stats(no_debounce)))
print(string.format("reload alone (compile, start beside the old, swap; %d reloads):", DIRECT))
print(string.format("  %s", stats(took)))
print(string.format("  reference: loadfile + run the chunk %.3f ms; ratio reload/reference %.2f",
  reference * 1e3, (function() table.sort(took) return took[(#took + 1) // 2] end)() / reference))
os.execute("rm -rf " .. dir)
