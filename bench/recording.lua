-- The generated recording of the backtest benchmarks (bench/backtest.lua, bench/sweep.lua):
-- 5 binary markets, then n price records cycling over them on a sine wave.
--   local recording = dofile("bench/recording.lua")
--   recording(path, n, { step = seconds between records, phase = true (a phase per market) })
local core = require "polysim.core"

return function(path, n, o)
  o = o or {}
  local step = o.step or 0.01
  local f = assert(io.open(path, "wb"))
  local T0 = 1800000000
  local ids = {}
  for k = 1, 5 do
    ids[k] = "0x" .. string.rep(string.format("%x", k), 64)
    f:write(core.json_encode { type = "market", t = T0, market = { condition_id = ids[k], question = "M" .. k .. "?",
      outcomes = { "Yes", "No" }, fee_rate = "0.02", tick_size = "0.01" } }, "\n")
  end
  for i = 0, n - 1 do
    local id = ids[i % 5 + 1]
    local p = 0.5 + 0.2 * math.sin(i / 50 + (o.phase and i % 5 or 0))
    f:write(string.format('{"type":"price","t":%.3f,"msg":{"type":"price","market_id":"%s","buy":"%.2f",' ..
      '"sell":"%.2f","outcomes":[{"label":"Yes","price":"%.2f"},{"label":"No","price":"%.2f"}]}}\n',
      T0 + i * step, id, p, 1 - p, p, 1 - p))
  end
  f:close()
end
